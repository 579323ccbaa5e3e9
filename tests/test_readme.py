"""The README's walk-through works as written against `make run`'s setup:
init-db, seed-demo and the development server, on SQLite."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.servers import ROOT, free_port, serving


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
    port = free_port()
    with serving(flask + ["run", "--port", str(port)], port, env):
        script = _walkthrough().replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        # Run where `instance/` is the server's instance folder, as in a checkout.
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"status": "issued"' in out
    assert re.search(r'"verdict": "(validated|check_required)"', out)
    assert '"verdict": "check_required"' in out  # the watch
    assert '"status": "validated"' in out        # the officer's decision
    assert '{"exit_point":"AMS","ends_at":' in out  # on duty at the desk
    assert "form.validated  customs  AMS" in out   # ... in the audit trail, as the shop sees it
    assert "form.check_required  kiosk  AMS" in out
    assert "watched_category" not in out.split("form.issued", 1)[1]
    assert (tmp_path / "form-qr.png").read_bytes()[:4] == b"\x89PNG"
