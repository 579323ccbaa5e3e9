"""Production serving: `gunicorn 'api:create_app()'` with several workers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_gunicorn_serves_the_app_from_its_factory(database_url, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "api:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
                break
            except requests.RequestException:  # not listening yet, or a worker still booting
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert ready.json() == {"status": "ready"}
        # Both workers share the database's signing keys: one key set whichever answers.
        kids = {tuple(k["kid"] for k in requests.get(f"http://127.0.0.1:{port}/.well-known/jwks.json",
                                                      timeout=5).json()["keys"]) for _ in range(6)}
        assert len(kids) == 1
        missing = requests.get(f"http://127.0.0.1:{port}/api/v1/forms/NL0000000", timeout=5)
        assert missing.status_code == 401
        assert missing.headers["Content-Type"] == "application/problem+json"
    finally:
        server.terminate()
        server.wait(15)
