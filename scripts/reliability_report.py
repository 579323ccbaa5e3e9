#!/usr/bin/env python3
"""docs/reliability.md: each fault and attack, the tests that cover it, and
what those tests saw in the last run.

    scripts/reliability_report.py --tests          the test ids to run (one per line)
    scripts/reliability_report.py JUNIT FIGURES    write docs/reliability.md

``make reliability`` runs the listed tests on SQLite and PostgreSQL with
``--junitxml`` and RELIABILITY_FIGURES (tests/conftest.py collects the counts
each fault or attack test reports with its ``figures`` fixture), then calls
this script. The table is the list below; a test that does not exist any
more fails the report, so the document cannot silently fall behind.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "reliability.md"

A = "tests/api/"
# (section, fault or attack, [test ids: file::function, every parameter included])
CATALOGUE: list[tuple[str, str, list[str]]] = [
    ("Faults", "50 concurrent scans of one form, 4 gunicorn workers: one validation, one audit event, one outbox event", [
        A + "test_concurrency.py::test_fifty_scans_of_one_form_across_four_gunicorn_workers_validate_it_once",
        A + "test_concurrency.py::test_thirty_kiosks_scanning_one_form_at_once_validate_it_once"]),
    ("Faults", "10 officers deciding one form at once: one 200, nine 409", [
        A + "test_concurrency.py::test_ten_officers_deciding_one_form_across_four_gunicorn_workers_give_one_decision",
        A + "test_concurrency.py::test_ten_officers_deciding_one_form_at_once_give_one_decision"]),
    ("Faults", "20 concurrent retries of one form issue with one Idempotency-Key", [
        A + "test_concurrency.py::test_twenty_retries_of_one_issue_with_one_idempotency_key_store_one_form"]),
    ("Faults", "kill -9 of the API (gunicorn) during a burst of form submissions retried with their "
     "Idempotency-Key: every acknowledged form stored once, with its lines", [
        A + "test_crash.py::test_forms_acknowledged_while_the_server_is_killed_are_stored_once_with_all_their_lines"]),
    ("Faults", "kill -9 of the webhook worker mid-delivery (at-least-once, same webhook-id); SIGTERM stops it "
     "cleanly; two workers never send one event twice", [
        A + "test_crash.py::test_events_reach_the_receiver_though_the_delivery_worker_is_killed_mid_delivery",
        A + "test_crash.py::test_a_delivery_worker_told_to_stop_finishes_its_request_gives_back_its_leases_and_exits_0",
        A + "test_webhooks.py::test_a_worker_killed_mid_delivery_leaves_a_lease_that_runs_out",
        A + "test_webhooks.py::test_two_workers_deliver_a_burst_of_1000_events_each_exactly_once"]),
    ("Faults", "Kiosk offline, killed and restarted while queued, API back: each scan arrives once", [
        "tests/shared/test_shared_offline_queue.py::"
        "test_a_kiosk_killed_while_queuing_and_again_while_sending_loses_no_scan_and_counts_each_once",
        "tests/shared/test_shared_offline_queue.py::test_a_queued_scan_is_on_disk_when_add_returns_even_if_the_process_dies",
        "tests/shared/test_shared_offline_queue.py::"
        "test_a_crash_after_the_api_answered_but_before_the_delete_does_not_count_twice",
        "tests/kiosk/test_kiosk_screens.py::test_with_the_api_down_scans_queue_survive_a_restart_and_sync_exactly_once"]),
    ("Faults", "Officer handheld offline, restarted with decisions queued: each arrives once, conflicts shown", [
        "tests/officer/test_officer_offline.py"]),
    ("Faults", "PostgreSQL stopped and started while the API serves (gunicorn, a kiosk scanning throughout): "
     "503 problem details, then recovery without restarting the API", [
        A + "test_database_outage.py"]),
    ("Faults", "A webhook receiver hanging for 30 s while a kiosk scans through gunicorn: all 50 scans answered "
     "while it still hangs, the deliveries wait in the outbox; a scan never reads the officers' queue", [
        A + "test_isolation.py"]),
    ("Faults", "A kiosk's disk full or read-only while offline: the traveller is sent to the desk, never told "
     "'recorded', and the heartbeat reports the queue unwritable", [
        "tests/kiosk/test_kiosk_desk.py::"
        "test_offline_with_a_full_disk_the_traveller_is_sent_to_the_desk_and_nothing_is_said_recorded",
        "tests/kiosk/test_kiosk_desk.py::test_offline_with_a_full_disk_a_passport_scan_is_sent_to_the_desk_too",
        "tests/api/test_fleet.py::test_an_offline_queue_that_cannot_be_written_is_red"]),
    ("Faults", "A kiosk loses its network: red with the reason on the fleet page while the handheld stays "
     "green, green again when the network is back", [
        "tests/kiosk/test_kiosk_fleet.py"]),
    ("Attacks", "Tokens: alg none, HS256 keyed with the public key, expired, wrong issuer/audience, deleted user, "
     "revoked device", [
        A + "test_auth.py::test_an_unsigned_token_is_refused",
        A + "test_auth.py::test_an_hs256_token_keyed_with_the_public_key_is_refused",
        A + "test_auth.py::test_expired_or_foreign_tokens_signed_with_our_key_are_refused",
        A + "test_auth.py::test_a_deleted_users_token_stops_working",
        A + "test_auth.py::test_a_revoked_device_cannot_scan",
        A + "test_auth.py::test_a_device_token_with_a_wrong_secret_is_refused",
        A + "test_auth.py::test_a_qr_payload_is_not_an_access_token"]),
    ("Attacks", "Keys: an access token signed with a QR key, a QR code signed with an access-token key; "
     "rotations keep forms within their deadline verifying, and the JWKS holds only keys that verify", [
        A + "test_keys.py"]),
    ("Attacks", "Webhook SSRF: private, loopback and IPv6 forms carrying them (NAT64, 6to4, Teredo, "
     "IPv4-compatible/-mapped) refused at registration and before connecting; https only", [
        A + "test_webhooks.py::test_a_webhook_to_a_private_or_loopback_address_is_refused",
        A + "test_webhooks.py::test_delivery_to_an_ipv6_address_carrying_a_private_ipv4_one_is_refused_before_connecting",
        A + "test_webhooks.py::test_a_private_receiver_sees_not_even_a_tcp_handshake",
        A + "test_webhooks.py::test_a_webhook_over_plain_http_is_refused_in_production",
        A + "test_webhooks.py::test_a_webhook_registered_over_plain_http_is_not_sent_to_in_production"]),
    ("Attacks", "Access: another retailer's form (404), unlinked intermediary, kiosk deciding, role matrix", [
        A + "test_forms.py::test_a_retailer_never_sees_another_retailers_form",
        A + "test_forms.py::test_an_intermediary_issues_for_its_linked_retailers_only",
        A + "test_forms.py::test_a_retailer_cannot_issue_for_another_shop",
        A + "test_decisions.py::test_only_an_officer_decides",
        A + "test_auth.py::test_each_role_reaches_only_its_endpoints"]),
    ("Attacks", "Mass assignment: status or totals in a request body", [
        A + "test_forms.py::test_schema_errors_name_each_field",
        A + "test_forms.py::test_totals_sent_by_the_client_are_refused_not_trusted"]),
    ("Attacks", "QR: altered, unknown key, replay at another exit point, cancelled or expired form", [
        A + "test_scans.py::test_an_altered_qr_code_is_refused_as_tampered",
        A + "test_scans.py::test_a_form_signed_by_a_foreign_key_is_refused_as_unknown",
        A + "test_scans.py::test_a_form_already_validated_at_schiphol_is_refused_at_rotterdam",
        A + "test_scans.py::test_a_cancelled_form_is_refused",
        A + "test_scans.py::test_a_form_scanned_after_its_export_deadline_is_refused_and_expires",
        A + "test_scans.py::test_an_access_token_shown_as_a_qr_code_is_not_a_form_code"]),
    ("Attacks", "Input: malformed JSON, wrong types, huge bodies and arrays, Unicode, SQL and script injection", [
        A + "test_hostile_input.py",
        A + "test_problems.py::test_malformed_json_is_a_400_problem",
        A + "test_problems.py::test_a_huge_body_is_a_413_problem",
        A + "test_problems.py::test_text_no_database_can_store_is_refused_with_422_not_a_crash"]),
    ("Attacks", "Portal: everything escaped, CSRF enforced, security headers", [
        "tests/portal/test_browser.py::test_a_name_that_is_markup_renders_as_text_on_every_page",
        "tests/portal/test_browser.py::test_a_forged_post_without_the_csrf_token_is_refused",
        "tests/portal/test_sessions.py::test_every_state_changing_page_refuses_a_post_without_the_csrf_token",
        "tests/portal/test_sessions.py::test_pages_send_security_headers"]),
    ("Attacks", "Brute force: login and status lookups limited across 4 gunicorn workers (429 + Retry-After)", [
        A + "test_concurrency.py::test_password_guessing_across_four_gunicorn_workers_is_stopped_at_the_shared_limit",
        A + "test_concurrency.py::test_status_lookups_across_four_gunicorn_workers_are_stopped_at_the_shared_limit",
        A + "test_auth.py::test_password_guessing_is_stopped_with_429_and_retry_after",
        A + "test_status.py::test_guessing_one_forms_name_from_many_addresses_is_limited_per_form"]),
    ("Attacks", "GET /metrics without the metrics token or from outside the allowed networks: 401/403 problem", [
        A + "test_metrics.py::test_only_the_monitoring_system_may_scrape",
        A + "test_metrics.py::test_an_allowed_network_may_scrape_without_a_token_and_others_may_not",
        A + "test_metrics.py::test_several_gunicorn_workers_count_together_and_strangers_are_refused"]),
    ("Attacks", "Fuzzing: schemathesis over /openapi.json with a token of every role (no 5xx, responses match)", [
        A + "test_fuzz.py"]),
    ("Data protection", "Passport numbers encrypted at rest, keys rotated without downtime, never in logs", [
        A + "test_privacy.py",
        A + "test_forms.py::test_lists_mask_the_passport_number_and_details_show_it_to_the_owner"]),
    ("Data protection", "A database backup yields no usable private key, no webhook secret and no traveller in "
     "stored idempotent responses; the encryption key rotates and is required in production", [
        A + "test_secrets_at_rest.py"]),
    ("Data protection", "Retention: personal data removed after the final state, anonymous figures kept; "
     "finished webhook deliveries purged in batches, audit events kept", [
        A + "test_retention.py",
        A + "test_webhooks.py::test_finished_deliveries_are_purged_after_the_retention_period_in_batches"]),
    ("Data protection", "Logs: a day of requests (forms, 422s, scans, passports, decisions, status look-ups, "
     "portal searches) through gunicorn and the development server names no traveller", [
        A + "test_logs.py::test_a_days_requests_through_gunicorn_log_no_passport_number_name_or_date_of_birth",
        A + "test_logs.py::test_a_days_requests_through_the_development_server_log_no_personal_data",
        A + "test_logs.py::test_the_development_servers_request_lines_lose_their_query_string"]),
    ("Data protection", "Tamper-evident audit trail: hash chain and verify-audit", [
        A + "test_audit_chain.py"]),
]


def test_ids() -> list[str]:
    return [test for _, _, tests in CATALOGUE for test in tests]


def parameters(name: str) -> str:
    """``sqlite-invoice_number`` of ``test_x[sqlite-invoice_number]``."""
    return name[name.index("[") + 1:-1] if "[" in name else ""


def load_results(junit: Path) -> dict[str, list[dict]]:
    """Per test case (file::function without parameters): each run's outcome."""
    results = defaultdict(list)
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        name = case.get("name", "")
        function = name.split("[")[0]
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "SKIPPED"}[tag]
        results[f"{path}::{function}"].append({
            "id": f"{path}::{name}", "parameters": parameters(name), "outcome": outcome,
            "seconds": float(case.get("time", 0)),
        })
    return results


def covered(results, test: str) -> list[dict]:
    if "::" in test:
        return results.get(test, [])
    return [run for key, runs in results.items() if key.startswith(test + "::") for run in runs]


def shown(counts: dict) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in counts.items() if name != "outcome")


def render(results, figures) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    lines = [
        "# Reliability: faults, attacks and the tests that cover them",
        "",
        "Each row is a fault the system must survive or an attack it must refuse, the tests that",
        "prove it, and what those tests saw in the last run. Every test runs in `make test` on",
        "SQLite and PostgreSQL (where a test names one database, it needs that one: gunicorn with",
        "several workers on one SQLite file is not a deployment). Regenerate this file with",
        "`make reliability` (the tests below, then `scripts/reliability_report.py`).",
        "",
        f"Last run: {now}, commit {commit}, {platform.python_implementation()} {platform.python_version()},"
        f" {platform.machine()}.",
        "",
    ]
    missing = []
    for section in dict.fromkeys(s for s, _, _ in CATALOGUE):
        lines += [f"## {section}", "", "| fault or attack | tests | last run |", "|---|---|---|"]
        for sec, what, tests in CATALOGUE:
            if sec != section:
                continue
            names, seen = [], []
            for number, test in enumerate(tests, start=1):
                runs = covered(results, test)
                if not runs:
                    missing.append(test)
                    continue
                # Numbered when a row has several tests, so each figure
                # line says which test (and which parameters) saw it.
                mark = f"({number}) " if len(tests) > 1 else ""
                names.append(f"{mark}`{test.removeprefix('tests/')}`")
                for run in runs:
                    counts = figures.get(run["id"])
                    # A whole file: name the test that saw the figures.
                    test_name = "" if "::" in test else run["id"].split("::")[-1].split("[")[0] + " "
                    where = f"{mark}{test_name}{run['parameters']}".strip()
                    where = f"{where}: " if where else ""
                    if counts:
                        seen.append(f"{where}{run['outcome']}; {shown(counts)}")
                    elif run["outcome"] != "passed":
                        seen.append(f"{where}{run['outcome']}")
            outcomes = [run["outcome"] for test in tests for run in covered(results, test)]
            summary = f"{outcomes.count('passed')}/{len(outcomes)} runs passed"
            lines.append(f"| {what} | {'<br>'.join(names)} | {'<br>'.join([summary] + seen)} |")
        lines.append("")
    if missing:
        sys.exit("reliability report: these tests did not run (renamed or removed?):\n  " + "\n  ".join(missing))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if argv == ["--tests"]:
        print("\n".join(test_ids()))
        return
    if len(argv) != 2:
        sys.exit(__doc__)
    results = load_results(Path(argv[0]))
    figures = json.loads(Path(argv[1]).read_text()) if Path(argv[1]).exists() else {}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(render(results, figures))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
