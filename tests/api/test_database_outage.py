"""A database restart while the API serves: requests fail with 503 problem
details while it is down and succeed again after, without restarting the API."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from api import create_app
from api.cli import migrate

ROOT = Path(__file__).resolve().parents[2]
PG = str(ROOT / "scripts" / "throwaway-postgres.sh")


def test_the_api_answers_503_while_postgresql_restarts_and_recovers_by_itself(monkeypatch):
    # Its own cluster (under /tmp, which the postgres user can reach), so
    # stopping it disturbs no other test.
    cluster = tempfile.mkdtemp(prefix="taxfree-outage-")
    shutil.rmtree(cluster)
    url = subprocess.run([PG, "start", cluster], check=True, capture_output=True, text=True).stdout.strip()
    try:
        migrate(url)
        instance = tempfile.mkdtemp(prefix="taxfree-outage-instance-")
        monkeypatch.setenv("INSTANCE_PATH", instance)
        app = create_app({"DATABASE_URL": url})
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        assert client.post("/api/v1/auth/token", json={"username": "x", "password": "y"}).status_code == 401

        subprocess.run([PG, "pause", cluster], check=True, capture_output=True)
        for r in (client.get("/readyz"),
                  client.post("/api/v1/auth/token", json={"username": "x", "password": "y"})):
            assert r.status_code == 503
            assert r.mimetype == "application/problem+json"
            assert r.headers["Retry-After"] == "5"

        subprocess.run([PG, "resume", cluster], check=True, capture_output=True)
        assert client.get("/readyz").status_code == 200
        assert client.post("/api/v1/auth/token", json={"username": "x", "password": "y"}).status_code == 401
        app.extensions["db_engine"].dispose()
        shutil.rmtree(instance, ignore_errors=True)
    finally:
        subprocess.run([PG, "stop", cluster], capture_output=True)
