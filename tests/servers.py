"""Real servers for tests: a free port on 127.0.0.1, and a command (the
development server, gunicorn) started, awaited and stopped."""
from __future__ import annotations

import socket
import subprocess
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


@contextmanager
def serving(command: list[str], port: int, env: dict, *, ready: str = "/healthz", timeout: float = 60):
    """Run ``command`` (listening on ``port``) from the repository root until
    ``ready`` answers; yields the base URL and stops the server afterwards."""
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
