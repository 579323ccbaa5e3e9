"""Real servers for tests: a free port on 127.0.0.1, and a command (the
development server, gunicorn) started, awaited and stopped."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_command(port: int, workers: int) -> list[str]:
    """The production server (with the repository's gunicorn.conf.py) on ``port``."""
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
            "api:create_app()"]


def server_environment(app, database_url: str, instance_path) -> dict:
    """The environment of a server process on the test's database, set up as
    the tests' app is: no random checks, so a plain form's verdict is known."""
    return {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance_path),
            "RISK_POLICY": json.dumps(app.config["RISK_POLICY"]),
            # The workers' metric files in the test's folder: a server killed
            # with SIGKILL leaves nothing behind in /tmp.
            "PROMETHEUS_MULTIPROC_DIR": str(Path(instance_path) / "metrics")}


@contextmanager
def serving(command: list[str], port: int, env: dict, *, ready: str = "/healthz", timeout: float = 60,
            output: Path | None = None):
    """Run ``command`` (listening on ``port``) from the repository root until
    ``ready`` answers; yields the base URL and stops the server afterwards.
    ``output``: a file that gets the server's stdout and stderr (its logs)."""
    if output is None:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    else:
        with open(output, "wb") as sink:  # the child keeps its own copy of the file
            server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(url + ready, timeout=10).ok:
                    break
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            assert server.poll() is None, f"{' '.join(command)} exited before it served"
            assert time.monotonic() < deadline, f"{' '.join(command)} did not start"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(30)
