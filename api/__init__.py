"""The tax-free export validation API (Flask).

``create_app()`` is the application factory: ``flask --app api run`` for
development, ``gunicorn 'api:create_app()'`` in production.
"""
from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shared import presence, risk, rules

from . import cli, database, observability, problems
from .keys import Keyring
from .personal_data import cipher_from_keys


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None,
                instance_relative_config=True)
    from . import config

    app.config.update(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)
    config.settle_production_secrets(app.config, app.instance_path)
    # Demo tokens and pairing QR codes are written there, keys or not.
    os.makedirs(app.instance_path, exist_ok=True)
    # Fail at start-up, not at the first scan, on a bad rule configuration.
    app.config["RULESET"] = rules.ruleset_for(app.config["MEMBER_STATE"])
    app.config["RISK"] = risk.policy_from_dict(app.config["RISK_POLICY"])
    app.config["PRESENCE"] = presence.policy_from_dict(app.config["PRESENCE_POLICY"])
    from .services import fleet

    app.config["FLEET"] = fleet.rules_from_dict(app.config["FLEET_RULES"])
    app.json.sort_keys = False
    # "/forms/" and "/forms" are one resource: no redirect (an HTML body) for
    # a trailing slash.
    app.url_map.strict_slashes = False

    # Before the database: its sessions carry the cipher of the signing secrets.
    app.extensions["secret_cipher"] = cipher_from_keys(app.config["SIGNING_KEY_ENCRYPTION_KEYS"])
    database.init_app(app)
    # One JSON line per request and per background job, and metrics for
    # the monitoring system (api/observability).
    observability.init_app(app)
    app.extensions["passport_cipher"] = cipher_from_keys(app.config["PASSPORT_KEYS"])
    app.extensions["keyring"] = Keyring()
    problems.init_app(app)

    from .resources import register

    register(app)
    # The web pages: retailer portal, traveller status page, supervisor
    # dashboard (server-rendered HTML, browser sessions, CSRF).
    from . import portal

    portal.init_app(app)
    cli.init_app(app)
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app
