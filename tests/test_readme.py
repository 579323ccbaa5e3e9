"""The README's walk-through works as written against `make run`'s setup:
init-db, seed-demo and the development server, on SQLite."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Walk through the API", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_readme_walkthrough_runs_as_written(tmp_path):
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path / "instance"), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    flask = [sys.executable, "-m", "flask", "--app", "api"]
    for command in ("init-db", "seed-demo"):
        subprocess.run(flask + [command], env=env, check=True, capture_output=True, cwd=ROOT)
    port = _free_port()
    server = subprocess.Popen(flask + ["run", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the development server did not start"
            time.sleep(0.1)
        script = _walkthrough().replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        # Run where `instance/` is the server's instance folder, as in a checkout.
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"status": "issued"' in out
    assert re.search(r'"verdict": "(validated|check_required)"', out)
    assert '"verdict": "check_required"' in out  # the watch
    assert '"status": "validated"' in out        # the officer's decision
    assert "form.validated  user:" in out         # ... in the audit trail
    assert (tmp_path / "form-qr.png").read_bytes()[:4] == b"\x89PNG"
