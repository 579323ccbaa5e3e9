"""Configuration from the environment, with embedded-database defaults.

``DATABASE_URL`` selects the database: SQLite under ``instance/`` unless set
(PostgreSQL in production: ``postgresql+psycopg://user:pw@host/db``).
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def _instance_secret(instance_path: str, name: str) -> str:
    """A random secret kept in the instance folder, so a fresh checkout runs
    without setup and restarts keep sessions and passport keys valid."""
    path = Path(instance_path) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def load(instance_path: str) -> dict:
    env = os.environ
    return {
        "DATABASE_URL": env.get(
            "DATABASE_URL", f"sqlite:///{Path(instance_path) / 'taxfree.sqlite3'}"
        ),
        "SECRET_KEY": env.get("SECRET_KEY") or _instance_secret(instance_path, "secret_key"),
        # Keys the passport-number hash used for lookups; changing it orphans
        # existing lookups, so it is kept apart from SECRET_KEY.
        "PASSPORT_HASH_KEY": env.get("PASSPORT_HASH_KEY")
        or _instance_secret(instance_path, "passport_hash_key"),
        # werkzeug's scrypt; the test suite uses a cheaper method for speed.
        "PASSWORD_HASH_METHOD": env.get("PASSWORD_HASH_METHOD", "scrypt"),
        "LOGIN_ATTEMPTS_PER_USER_PER_MINUTE": int(env.get("LOGIN_ATTEMPTS_PER_USER_PER_MINUTE", "10")),
        "LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": int(env.get("LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "100")),
        "MEMBER_STATE": env.get("MEMBER_STATE", "NL"),
        "RISK_POLICY": json.loads(env.get("RISK_POLICY", "{}")),
        "ACCESS_TOKEN_TTL": int(env.get("ACCESS_TOKEN_TTL", "3600")),
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
    }
