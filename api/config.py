"""Configuration from the environment, with embedded-database defaults.

``DATABASE_URL`` selects the database: SQLite under ``instance/`` unless set
(PostgreSQL in production: ``postgresql+psycopg://user:pw@host/db``).
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def _instance_secret(instance_path: str, name: str, make=lambda: secrets.token_hex(32)) -> str:
    """A random secret kept in the instance folder, so a fresh checkout runs
    without setup and restarts keep sessions and passport keys valid."""
    path = Path(instance_path) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


class ConfigError(RuntimeError):
    """A setting is missing or unusable: the app refuses to start."""


def is_production(env=None) -> bool:
    """Whether the app runs for real: ``TAXFREE_ENV=production``, or, when
    TAXFREE_ENV is not set, a database other than SQLite (the embedded
    database of development, demos and tests). ``env`` is the environment
    or the app's configuration. A production server must be given its
    secrets: none is generated in an instance folder that a second worker,
    a restore or a new machine would not share, and that would travel with
    the database's backups."""
    env = os.environ if env is None else env
    explicit = str(env.get("TAXFREE_ENV") or "").strip().lower()
    if explicit:
        return explicit == "production"
    return not str(env.get("DATABASE_URL") or "sqlite").startswith("sqlite")


def load(instance_path: str) -> dict:
    env = os.environ
    return {
        "DATABASE_URL": env.get(
            "DATABASE_URL", f"sqlite:///{Path(instance_path) / 'taxfree.sqlite3'}"
        ),
        # A pooled connection unused for this long is checked (SELECT 1)
        # before a request gets it, and replaced if the database dropped it
        # (api/database.py).
        "DATABASE_PING_AFTER_IDLE_SECONDS": float(env.get("DATABASE_PING_AFTER_IDLE_SECONDS", "1")),
        # "production" or "development"; unset, a PostgreSQL DATABASE_URL
        # counts as production (is_production).
        "TAXFREE_ENV": env.get("TAXFREE_ENV", ""),
        # The keys below come from the environment; settle_production_secrets
        # generates them into instance/ for development, and refuses to start
        # without them in production.
        "SECRET_KEY": env.get("SECRET_KEY", ""),
        # Keys the passport-number hash used for lookups; changing it orphans
        # existing lookups, so it is kept apart from SECRET_KEY.
        "PASSPORT_HASH_KEY": env.get("PASSPORT_HASH_KEY", ""),
        # Keys the audit trail's hash chain (api/services/audit_chain.py):
        # kept out of the database, so write access to the database alone is
        # not enough to forge a consistent chain. Every worker needs the same
        # key, and links made with another key no longer verify.
        "AUDIT_CHAIN_KEY": env.get("AUDIT_CHAIN_KEY", ""),
        # The traveller's personal data on a form is removed this many days
        # after its final status (flask --app api purge-personal-data,
        # api/services/retention.py). A year: refunds are paid within weeks
        # or months of validation, and travellers' questions about them come
        # within that time. The seven years a retailer keeps its books (NL:
        # art. 52 AWR) are for the invoice in its own records, not for the
        # traveller's passport in this system; what customs and the figures
        # need (amounts, lines, status, exit point, audit trail) stays.
        # How many reverse proxies (nginx, a load balancer) stand in front of
        # gunicorn. Behind one, every request seems to come from the proxy
        # and the per-address rate limits would lock out a whole airport at
        # once; with 1, the client address is taken from the proxy's
        # X-Forwarded-For. 0 (no proxy) ignores that header, which a client
        # could otherwise forge to escape the limits.
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0")),
        "PERSONAL_DATA_RETENTION_DAYS": int(env.get("PERSONAL_DATA_RETENTION_DAYS", "365")),
        # werkzeug's scrypt; the test suite uses a cheaper method for speed.
        "PASSWORD_HASH_METHOD": env.get("PASSWORD_HASH_METHOD", "scrypt"),
        # Login attempts (api/services/sign_in.py): per address per minute;
        # per user from addresses where they have not logged in lately, per
        # window; failures per user and address make the next try wait.
        "LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": int(env.get("LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "100")),
        "LOGIN_ATTEMPTS_PER_USER": int(env.get("LOGIN_ATTEMPTS_PER_USER", "30")),
        "LOGIN_USER_WINDOW_SECONDS": int(env.get("LOGIN_USER_WINDOW_SECONDS", "900")),
        # Wrong passwords (per user and address) and wrong last names on the
        # status lookups (per form and address): this many are free, then
        # the wait before the next try starts at the first and doubles up
        # to the maximum.
        "FAILED_ATTEMPTS_FREE": int(env.get("FAILED_ATTEMPTS_FREE", "3")),
        "FAILED_ATTEMPTS_FIRST_WAIT_SECONDS": int(env.get("FAILED_ATTEMPTS_FIRST_WAIT_SECONDS", "1")),
        "FAILED_ATTEMPTS_MAX_WAIT_SECONDS": int(env.get("FAILED_ATTEMPTS_MAX_WAIT_SECONDS", "900")),
        # Fernet keys for passport numbers at rest, newest first (rotation:
        # prepend a key, run reencrypt-personal-data, then drop the old one).
        "PASSPORT_KEYS": env.get("PASSPORT_KEYS", ""),
        # Fernet keys for the secrets that sign (signing keys' private
        # halves, webhook secrets) at rest, newest first (api/custody.py;
        # rotation: prepend a key, run reencrypt-signing-keys, drop the old
        # one).
        "SIGNING_KEY_ENCRYPTION_KEYS": env.get("SIGNING_KEY_ENCRYPTION_KEYS", ""),
        "MEMBER_STATE": env.get("MEMBER_STATE", "NL"),
        # The customs desk (api/services/decisions.py). A check opened before
        # the export deadline ended may still be validated this long after
        # it: the traveller who reached the desk at 23:40 on the last day
        # was in time, the queue was not. Two hours covers the desk's
        # evening queue at a busy exit point without reopening the deadline
        # for anyone who arrives after midnight. Validations later than that
        # are refused and the check expires (expire-forms).
        "DESK_DECISION_GRACE_MINUTES": int(env.get("DESK_DECISION_GRACE_MINUTES", "120")),
        # An officer's duty at an exit point (POST /api/v1/duty) ends after
        # this many hours without signing off: a shift, so a forgotten
        # sign-on does not leave them on duty there for good.
        "DESK_DUTY_MAX_HOURS": int(env.get("DESK_DUTY_MAX_HOURS", "12")),
        "RISK_POLICY": json.loads(env.get("RISK_POLICY", "{}")),
        # Keys the random check (shared/risk.py sample_point): whoever knows
        # it can tell which forms will be picked, so it is no part of
        # RISK_POLICY, which may be shown, and production must set it.
        "RISK_SAMPLING_KEY": env.get("RISK_SAMPLING_KEY", "").strip(),
        "ACCESS_TOKEN_TTL": int(env.get("ACCESS_TOKEN_TTL", "3600")),
        # The traveller's app (api/services/traveller.py): its sign-in token
        # and the desk pass live this many seconds.
        "TRAVELLER_TOKEN_TTL": int(env.get("TRAVELLER_TOKEN_TTL", "900")),
        "DESK_PASS_TTL": int(env.get("DESK_PASS_TTL", "900")),
        # Sign-ins against guessing dates of birth and listing passports: per
        # address generously (an airport's Wi-Fi is one address), per
        # passport tightly.
        "TRAVELLER_SIGNINS_PER_ADDRESS_PER_MINUTE": int(env.get("TRAVELLER_SIGNINS_PER_ADDRESS_PER_MINUTE", "30")),
        "TRAVELLER_SIGNINS_PER_PASSPORT_PER_HOUR": int(env.get("TRAVELLER_SIGNINS_PER_PASSPORT_PER_HOUR", "10")),
        # How good the phone's evidence of presence must be
        # (shared.presence.PresencePolicy, as JSON; missing keys keep defaults).
        "PRESENCE_POLICY": json.loads(env.get("PRESENCE_POLICY", "{}")),
        # A ferry traveller may validate from this many hours before the
        # sailing until it leaves.
        "APP_HOURS_BEFORE_SAILING": float(env.get("APP_HOURS_BEFORE_SAILING", "6")),
        # However often it is refreshed, an access token ends this long after
        # its user gave their password (a shift, as for the web pages).
        "ACCESS_SESSION_MAX_SECONDS": int(env.get("ACCESS_SESSION_MAX_SECONDS", "43200")),
        "TOKEN_ISSUER": env.get("TOKEN_ISSUER", "taxfree-api"),
        "TOKEN_AUDIENCE": env.get("TOKEN_AUDIENCE", "taxfree-api"),
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH", str(1024 * 1024))),
        # OpenAPI (flask-smorest); the docs page uses files shipped with
        # flask-swagger-ui, served by this app: kiosk and office networks
        # are closed.
        "API_TITLE": "Tax-free export validation API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
        # Webhooks (api/services/deliveries.py). Private and loopback
        # receiver addresses are refused unless this is on (tests; a local
        # demo): a webhook URL must not reach into the operator's network.
        # The same switch lets them go over plain http: production sends
        # over https only, so the signed events and their secrets' MACs are
        # not read or replayed on the way.
        "WEBHOOKS_ALLOW_PRIVATE": env.get("WEBHOOKS_ALLOW_PRIVATE", "").lower() in ("1", "true", "yes"),
        # Delivered, failed and cancelled deliveries (and their attempts) are
        # deleted this many days after their last (re)scheduling by
        # flask --app api purge-deliveries; pending ones stay.
        "WEBHOOKS_DELIVERY_RETENTION_DAYS": int(env.get("WEBHOOKS_DELIVERY_RETENTION_DAYS", "90")),
        "WEBHOOKS_TIMEOUT_SECONDS": float(env.get("WEBHOOKS_TIMEOUT_SECONDS", "5")),
        "WEBHOOKS_LEASE_SECONDS": float(env.get("WEBHOOKS_LEASE_SECONDS", "120")),
        "WEBHOOKS_BATCH_SIZE": int(env.get("WEBHOOKS_BATCH_SIZE", "10")),
        "WEBHOOKS_RETRY_HOURS": float(env.get("WEBHOOKS_RETRY_HOURS", "72")),
        "WEBHOOKS_POLL_SECONDS": float(env.get("WEBHOOKS_POLL_SECONDS", "1")),
        "WEBHOOKS_MAX_PER_OWNER": int(env.get("WEBHOOKS_MAX_PER_OWNER", "20")),
        # The device fleet (api/services/fleet.py): when a device's last
        # heartbeat makes it amber or red. JSON, e.g. {"silent_amber_seconds":
        # 120, "silent_red_seconds": 600, "queue_depth_amber": 20,
        # "queue_oldest_red_seconds": 900, "free_disk_amber_bytes": 1073741824,
        # "free_disk_red_bytes": 209715200, "clock_skew_red_seconds": 60}.
        "FLEET_RULES": json.loads(env.get("FLEET_RULES", "{}")),
        # GET /metrics (Prometheus) is for the monitoring system only: a
        # scraper either sends "Authorization: Bearer <METRICS_TOKEN>" or
        # comes from one of METRICS_ALLOWED_NETWORKS (CIDR, comma-separated,
        # e.g. "10.1.2.0/24,127.0.0.1/32"). With neither set, nobody may.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
        "METRICS_ALLOWED_NETWORKS": env.get("METRICS_ALLOWED_NETWORKS", ""),
        # Web pages (api/portal): server-side sessions, ended after this many
        # seconds without a request, and after the maximum whatever happens.
        "PORTAL_SESSION_IDLE_SECONDS": int(env.get("PORTAL_SESSION_IDLE_SECONDS", "1800")),
        "PORTAL_SESSION_MAX_SECONDS": int(env.get("PORTAL_SESSION_MAX_SECONDS", "43200")),
        # Browsers accept Secure cookies from http://localhost, so only a
        # plain-http deployment on another host name needs this off.
        "PORTAL_COOKIE_SECURE": env.get("PORTAL_COOKIE_SECURE", "1") != "0",
        # Traveller status lookups (the /status page and POST /api/v1/status
        # share these counters; per form: from unfamiliar addresses).
        "STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE": int(env.get("STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE", "20")),
        "STATUS_LOOKUPS_PER_FORM_PER_HOUR": int(env.get("STATUS_LOOKUPS_PER_FORM_PER_HOUR", "20")),
        # Devices report the queued scans the API refused (POST /api/v1/scans/refused).
        "REFUSED_REPORTS_PER_DEVICE_PER_HOUR": int(env.get("REFUSED_REPORTS_PER_DEVICE_PER_HOUR", "60")),
        # Flask-WTF's CSRF check runs only on the web pages (api/portal calls
        # it); the API authenticates every request with a bearer token and
        # has no cookies to forge. Tokens live as long as the session.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _fernet_key() -> str:
    return Fernet.generate_key().decode()


# The keys that protect what the database holds, and how development makes
# one: each must be the same on every machine and kept apart from the
# database and its backups.
KEYS_KEPT_OUTSIDE = {
    "SECRET_KEY": lambda: secrets.token_hex(32),
    "PASSPORT_HASH_KEY": lambda: secrets.token_hex(32),
    "AUDIT_CHAIN_KEY": lambda: secrets.token_hex(32),
    "PASSPORT_KEYS": _fernet_key,
    "SIGNING_KEY_ENCRYPTION_KEYS": _fernet_key,
    # Behind the random check: whoever knows it can tell which forms will be picked.
    "RISK_SAMPLING_KEY": lambda: secrets.token_hex(32),
}
# Keys that are secrets rather than Fernet keys must be long enough not to be guessed.
MIN_KEY_LENGTH = {"RISK_SAMPLING_KEY": 32}


def settle_production_secrets(config: dict, instance_path: str) -> None:
    """Fill in the keys kept outside the database for development, or refuse
    to start in production without them: a key generated next to the
    database would be copied with it (a backup then opens itself), and each
    machine would generate its own."""
    missing = [name for name in KEYS_KEPT_OUTSIDE if not config.get(name)]
    if missing and is_production(config):
        raise ConfigError(
            f"{', '.join(missing)} not set. In production (TAXFREE_ENV=production, or unset with a PostgreSQL "
            "DATABASE_URL) these keys must come from "
            "the environment, the same on every machine and kept apart from the database's backups; "
            "PASSPORT_KEYS and SIGNING_KEY_ENCRYPTION_KEYS are comma-separated Fernet keys, newest first "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())').")
    for name in missing:
        config[name] = _instance_secret(instance_path, name.lower(), KEYS_KEPT_OUTSIDE[name])
    for name, length in MIN_KEY_LENGTH.items():
        if len(config[name]) < length:
            raise ConfigError(f"{name} must be at least {length} characters long")
