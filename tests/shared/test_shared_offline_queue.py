"""The kiosk's durable offline queue against a live API: written before
"recorded", survives a crash of the process, drained oldest first, each scan
removed only after the API answered it, and counted exactly once."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from shared.client import KioskClient, Offline, iso_utc
from shared.offline_queue import OfflineQueue
from tests.servers import free_port


def scanned_events(world, form_id) -> int:
    items = world.get("shop", f"/api/v1/forms/{form_id}/events").get_json()["items"]
    return [e["type"] for e in items].count("form.scanned")


def body(form, minutes_ago=1):
    at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return {"qr_payload": form["qr_payload"], "scanned_at": iso_utc(at)}


@pytest.fixture
def offline_url():
    return f"http://127.0.0.1:{free_port()}"


def test_a_queued_scan_is_on_disk_when_add_returns_even_if_the_process_dies(tmp_path):
    # Another process adds a scan and is killed the moment add() returns
    # (os._exit: no clean-up, no close): the scan must be there afterwards.
    path = tmp_path / "queue.sqlite3"
    script = textwrap.dedent(f"""
        import os
        from shared.offline_queue import OfflineQueue
        q = OfflineQueue({str(path)!r})
        q.add("qr", {{"qr_payload": "eyJ...", "scanned_at": "2026-11-28T10:00:00+00:00"}}, "scan-crash-1")
        os._exit(9)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    with OfflineQueue(path) as queue:
        [item] = queue.pending()
    assert item.idempotency_key == "scan-crash-1"
    assert item.body["qr_payload"] == "eyJ..."


def test_scans_keep_their_order_and_keys_across_a_restart(tmp_path):
    with OfflineQueue(tmp_path / "q.sqlite3") as queue:
        keys = [queue.add("qr", {"qr_payload": f"p{i}"}).idempotency_key for i in range(3)]
        assert len(set(keys)) == 3  # one key per scan
    with OfflineQueue(tmp_path / "q.sqlite3") as queue:
        assert [p.idempotency_key for p in queue.pending()] == keys
        assert [p.body["qr_payload"] for p in queue.pending()] == ["p0", "p1", "p2"]


def test_draining_while_still_offline_keeps_everything(tmp_path, offline_url):
    with OfflineQueue(tmp_path / "q.sqlite3") as queue:
        queue.add("qr", {"qr_payload": "a"})
        queue.add("qr", {"qr_payload": "b"})
        report = queue.drain(KioskClient(offline_url, "token"))
        assert isinstance(report.stopped_by, Offline)
        assert (report.sent, report.remaining) == ([], 2)
        assert [p.attempts for p in queue.pending()] == [1, 0]  # stopped at the first


def test_when_the_api_is_back_the_queue_drains_in_order_and_each_form_counts_once(
        tmp_path, live_server, world):
    forms = [world.issue() for _ in range(3)]
    client = KioskClient(live_server, world.devices["kiosk"])
    with OfflineQueue(tmp_path / "q.sqlite3") as queue:
        for form in forms:
            queue.add("qr", body(form))
        sent_order = []
        report = queue.drain(client, on_sent=lambda item, verdict: sent_order.append(verdict.form_id))
        assert report.remaining == 0 and report.stopped_by is None and report.failed == []
        assert sent_order == [f["id"] for f in forms]
        assert [v.verdict for _, v in report.sent] == ["validated"] * 3
        # Draining again sends nothing.
        assert queue.drain(client).sent == []
    assert [scanned_events(world, f["id"]) for f in forms] == [1, 1, 1]


def test_a_crash_after_the_api_answered_but_before_the_delete_does_not_count_twice(
        tmp_path, live_server, world, monkeypatch):
    form = world.issue()
    client = KioskClient(live_server, world.devices["kiosk"])
    path = tmp_path / "q.sqlite3"
    queue = OfflineQueue(path)
    queue.add("qr", body(form))

    def crash(item):
        raise SystemExit("power cut")

    monkeypatch.setattr(queue, "_delete", crash)
    with pytest.raises(SystemExit):
        queue.drain(client)
    queue.close()
    # After the restart the scan is still queued; resent with its key, the
    # API replays its first answer instead of recording a second scan.
    with OfflineQueue(path) as restarted:
        report = restarted.drain(client)
        [(_, verdict)] = report.sent
        assert verdict.replayed and verdict.verdict == "validated"
        assert report.remaining == 0
    assert scanned_events(world, form["id"]) == 1


def test_a_scan_the_api_refuses_for_good_moves_aside_and_does_not_block_the_rest(
        tmp_path, live_server, world):
    too_old, fine = world.issue(), world.issue()
    client = KioskClient(live_server, world.devices["kiosk"])
    with OfflineQueue(tmp_path / "q.sqlite3") as queue:
        queue.add("qr", body(too_old, minutes_ago=60 * 24 * 30))  # 30 days: beyond what the API accepts
        queue.add("qr", body(fine))
        report = queue.drain(client)
        assert [item.body["qr_payload"] for item, _ in report.failed] == [too_old["qr_payload"]]
        assert [v.form_id for _, v in report.sent] == [fine["id"]]
        assert report.remaining == 0
        [failed] = queue.failed()
        assert (failed["status"], failed["code"]) == (422, "invalid_request")


def test_a_queued_passport_look_up_is_sent_too(tmp_path, live_server, world):
    coat = world.issue()
    with OfflineQueue(tmp_path / "q.sqlite3") as queue:
        queue.add("passport", {"passport_number": "E12345678", "passport_country": "CN",
                               "scanned_at": iso_utc(datetime.now(timezone.utc))})
        report = queue.drain(KioskClient(live_server, world.devices["kiosk"]))
    [(_, verdicts)] = report.sent
    assert [(v.form_id, v.verdict) for v in verdicts] == [(coat["id"], "validated")]


# --- kill -9 while queuing and while draining ---------------------------------

KIOSK_PROCESS = textwrap.dedent("""
    import json, sys, time
    from shared.client import KioskClient
    from shared.offline_queue import OfflineQueue

    path, mode, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    queue = OfflineQueue(path)
    if mode == "queue":  # the API is down: each scan is written, then "recorded" is shown
        for n, body in json.loads(arg):
            if any(item.idempotency_key == f"scan-{n}" for item in queue.pending()):
                continue  # queued before the kill
            queue.add("qr", body, f"scan-{n}")
            print(n, flush=True)
            time.sleep(0.02)
    else:  # the API is back: the queue drains, one scan after the other
        url, token = json.loads(arg)
        queue.drain(KioskClient(url, token), on_sent=lambda item, verdict: (print(item.idempotency_key, flush=True),
                                                                           time.sleep(0.05)))
    print("done", flush=True)
""")


def run_until_killed(args, kill_after_lines):
    """Start a kiosk process; SIGKILL it once it has printed ``kill_after_lines``
    lines (nothing is cleaned up, as in a power cut). Returns its lines."""
    process = subprocess.Popen([sys.executable, "-c", KIOSK_PROCESS, *args],
                               stdout=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if len(lines) == kill_after_lines:
            process.kill()
            break
    process.wait(60)
    process.stdout.close()
    return lines


def test_a_kiosk_killed_while_queuing_and_again_while_sending_loses_no_scan_and_counts_each_once(
        tmp_path, live_server, world, figures):
    forms = [world.issue() for _ in range(20)]
    scans = json.dumps([(n, body(form)) for n, form in enumerate(forms)])
    path = str(tmp_path / "queue.sqlite3")

    # Offline: killed after eight scans were shown as recorded, restarted.
    shown = run_until_killed([path, "queue", scans], kill_after_lines=8)
    assert shown == [str(n) for n in range(8)]
    shown += run_until_killed([path, "queue", scans], kill_after_lines=None)
    assert shown[-1] == "done" and sorted(int(n) for n in shown[:-1]) == list(range(20))
    # Online again: killed after five scans were answered, restarted.
    sent = run_until_killed([path, "drain", json.dumps([live_server, world.devices["kiosk"]])], kill_after_lines=5)
    assert len(sent) == 5
    sent += run_until_killed([path, "drain", json.dumps([live_server, world.devices["kiosk"]])],
                             kill_after_lines=None)

    with OfflineQueue(path) as queue:
        assert queue.pending() == []
    recorded = [scanned_events(world, form["id"]) for form in forms]
    assert recorded == [1] * 20
    figures(scans=20, kills=2, restarts=2, arrived=sum(n > 0 for n in recorded), lost=recorded.count(0),
            duplicated=sum(n - 1 for n in recorded if n > 1))
