"""Production serving: `gunicorn 'api:create_app()'` with several workers."""
from __future__ import annotations

import os

import requests

from tests.servers import free_port, gunicorn_command, serving


def test_gunicorn_serves_the_app_from_its_factory(database_url, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path)}
    with serving(gunicorn_command(port, workers=2), port, env, ready="/readyz") as url:
        assert requests.get(f"{url}/readyz", timeout=10).json() == {"status": "ready"}
        # Both workers share the database's signing keys: one key set whichever answers.
        kids = {tuple(k["kid"] for k in requests.get(f"{url}/.well-known/jwks.json", timeout=5).json()["keys"])
                for _ in range(6)}
        assert len(kids) == 1
        missing = requests.get(f"{url}/api/v1/forms/NL0000000", timeout=5)
        assert missing.status_code == 401
        assert missing.headers["Content-Type"] == "application/problem+json"
