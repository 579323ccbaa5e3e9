"""A device's heartbeat against a live API: what it sends, what the API
keeps, and that a heartbeat that cannot be sent is simply missed."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from shared.client import KioskClient
from shared.heartbeat import DeviceHealth, HeartbeatLoop, free_disk_bytes
from shared.offline_queue import OfflineQueue
from tests.servers import free_port


def health(**changes) -> DeviceHealth:
    values = dict(queue_depth=2, oldest_queued_at=datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc),
                  queue_writable=True, camera_ok=None, free_disk_bytes=7 * 10 ** 9)
    values.update(changes)
    return DeviceHealth(**values)


def stored(world, name="kiosk") -> dict | None:
    devices = world.get("officer", "/api/v1/devices/fleet").get_json()["items"]
    return next(d for d in devices if d["name"] == name)["heartbeat"]


def test_a_heartbeat_reports_the_devices_health_and_its_own_clock(live_server, world):
    ahead = datetime.now(timezone.utc) + timedelta(minutes=2)
    loop = HeartbeatLoop(KioskClient(live_server, world.devices["kiosk"]).heartbeat, health, 30,
                         clock=lambda: ahead, version="9.9.9")
    assert loop.beat()
    kept = stored(world)
    assert kept["app_version"] == "9.9.9" and kept["queue_depth"] == 2 and kept["camera_ok"] is None
    assert kept["oldest_queued_at"] == "2026-12-03T09:00:00+00:00"
    assert 110 < kept["clock_skew_seconds"] < 130  # the device's clock, not one corrected by the server's
    assert loop.online_since == ahead


def test_a_missed_heartbeat_is_not_retried_and_online_since_starts_again(live_server, world):
    moments = iter(datetime(2026, 12, 3, 10, m, tzinfo=timezone.utc) for m in range(10))
    client = KioskClient(live_server, world.devices["kiosk"])
    loop = HeartbeatLoop(client.heartbeat, health, 30, clock=lambda: next(moments))
    assert loop.beat() and loop.online_since.minute == 0
    assert loop.beat() and loop.online_since.minute == 0  # still the same stretch online
    client.base_url = f"http://127.0.0.1:{free_port()}"  # the network is gone
    assert not loop.beat() and loop.online_since is None
    client.base_url = live_server
    assert loop.beat() and loop.online_since.minute == 3
    assert stored(world)["online_since"] == "2026-12-03T10:03:00+00:00"
    assert (loop.sent, loop.failed) == (3, 1)


def test_the_loop_beats_on_its_own_thread_and_stops(live_server, world):
    sent = []
    loop = HeartbeatLoop(lambda body: sent.append(body) or {}, health, 0.05).start()
    try:
        deadline = time.monotonic() + 20
        while len(sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        loop.stop()
    assert len(sent) >= 3 and loop._thread is not None and not loop._thread.is_alive()
    with pytest.raises(ValueError):
        HeartbeatLoop(lambda body: {}, health, 0)


def test_the_offline_queue_tells_its_depth_and_oldest_scan(tmp_path):
    with OfflineQueue(tmp_path / "queue.sqlite3") as queue:
        assert queue.backlog() == (0, None)
        first = queue.add("qr", {"qr_payload": "a"})
        queue.add("qr", {"qr_payload": "b"})
        depth, oldest = queue.backlog()
    assert depth == 2 and oldest == datetime.fromisoformat(first.queued_at)
    assert free_disk_bytes(tmp_path / "not" / "there") == free_disk_bytes(tmp_path) > 0
