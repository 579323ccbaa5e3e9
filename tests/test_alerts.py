"""The Prometheus alerting rules (docs/alerts.yml) are valid, and fire on
sample series as docs/alerts_test.yml expects: promtool, from Debian's
prometheus package, checks both. Every alert has its runbook entry in
docs/operations.md."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parent.parent / "docs"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], cwd=DOCS, capture_output=True, text=True, timeout=120)


def test_the_alerting_rules_pass_promtool_check_rules():
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_device_silent_webhook_backlog_database_and_error_alerts_fire_on_sample_series():
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", (DOCS / "alerts_test.yml").read_text()))
    assert {"TaxfreeDeviceSilent", "TaxfreeWebhookBacklogOld"} <= tested


def test_every_alert_has_a_runbook_entry_in_operations_md():
    rules = [rule for group in yaml.safe_load((DOCS / "alerts.yml").read_text())["groups"]
             for rule in group["rules"]]
    operations = (DOCS / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", operations, re.M)}
    for rule in rules:
        runbook = rule["annotations"]["runbook_url"]
        assert runbook.startswith("docs/operations.md#"), rule["alert"]
        assert runbook.split("#", 1)[1] in anchors, (rule["alert"], runbook)
        assert rule["alert"] in operations, f"{rule['alert']} is not named in its runbook entry"
