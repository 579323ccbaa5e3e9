"""The README's "Integrating as an intermediary" works as written against
`make run`'s setup (init-db, seed-demo, the development server, on SQLite,
with WEBHOOKS_ALLOW_PRIVATE=true): the receiver it shows gets the event and
checks its signature, the worker delivers it, the deliveries list it."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

from tests.servers import ROOT, free_port, serving


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Integrating as an intermediary", 1)[1].split("\n## ", 1)[0]


def _block(language: str) -> str:
    return re.search(rf"```{language}\n(.*?)```", _section(), re.S).group(1)


def test_the_readme_intermediary_integration_runs_as_written(tmp_path):
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path / "instance"), "PYTHONPATH": str(ROOT),
           "WEBHOOKS_ALLOW_PRIVATE": "true"}
    env.pop("DATABASE_URL", None)
    flask = [sys.executable, "-m", "flask", "--app", "api"]
    for command in ("init-db", "seed-demo"):
        subprocess.run(flask + [command], env=env, check=True, capture_output=True, cwd=ROOT)
    port, hook_port = free_port(), free_port()
    (tmp_path / "receiver.py").write_text(_block("python"))
    with serving(flask + ["run", "--port", str(port)], port, env):
        bash = (_block("bash")
                .replace("127.0.0.1:5000", f"127.0.0.1:{port}")
                .replace("8000", str(hook_port))
                # The venv may live elsewhere than .venv/ when the suite runs.
                .replace(".venv/bin/flask", f"{sys.executable} -m flask"))
        # Run where receiver.py and `instance/` are, as in a checkout; in its
        # own process group, so a receiver left by a failing step is ended.
        script = subprocess.Popen(["bash", "-euo", "pipefail", "-c", bash], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        try:
            out, err = script.communicate(timeout=60)
        finally:
            try:
                os.killpg(script.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if script.poll() is None:
                script.communicate(timeout=10)
    assert script.returncode == 0, err
    form_id = re.search(r'\{"id":"(NL\w+)","status":"cancelled"\}', out).group(1)
    lines = out.splitlines()
    assert f"received form.cancelled {form_id} - signature ok" in lines
    assert "1 delivery attempt(s): 1 delivered, 0 to retry, 0 failed for good." in lines
    assert '{"event_type":"form.cancelled","status":"delivered","answers":[204]}' in lines
    assert lines.count(f'{{"id":"{form_id}","status":"cancelled"}}') == 2  # the cancel, then the feed
    status = json.loads(lines[-1])
    assert status["status"] == "cancelled" and status["next_step"].startswith("The shop cancelled")
    assert (tmp_path / "webhook-secret").read_text().startswith("whsec_")
