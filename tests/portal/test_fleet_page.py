"""The supervisor's fleet page: every device, its exit point, when it was
last heard of, its state and why, in English and Dutch."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from portal_support import portal_login


def _beat(world, device, **changes):
    body = {"app_version": "0.1.0", "queue_depth": 0, "camera_ok": True, "free_disk_bytes": 50 * 10 ** 9,
            "device_clock": datetime.now(timezone.utc).isoformat()}
    body.update(changes)
    r = world.post(device, "/api/v1/devices/me/heartbeat", body)
    assert r.status_code == 200, r.get_json()


def _rows(html: str) -> dict[str, tuple[str, list[str]]]:
    """{device name: (state, [reason codes])}."""
    rows = {}
    for state, body in re.findall(r'<tr data-device="[^"]+" data-state="(\w+)">(.*?)</tr>', html, re.S):
        name = re.search(r'<th scope="row">(.*?)<br>', body).group(1)
        rows[name] = (state, re.findall(r'data-reason="(\w+)"', body))
    return rows


def test_the_fleet_page_shows_each_device_its_state_and_why(client, world):
    _beat(world, "kiosk", queue_depth=35, camera_ok=False,
          oldest_queued_at=(datetime.now(timezone.utc) - timedelta(minutes=40)).isoformat())
    _beat(world, "rtm-kiosk")
    portal_login(client, "officer")
    html = client.get("/dashboard/fleet").get_data(as_text=True)
    assert _rows(html) == {"kiosk": ("red", ["queue_old", "camera", "queue_depth"]), "rtm-kiosk": ("green", [])}
    assert "The camera is not working." in html and "35 item(s) waiting in its offline queue." in html
    assert "The oldest item in its offline queue has waited 40 min." in html
    assert re.search(r'id="kpi-red">1<', html) and re.search(r'id="kpi-green">1<', html)
    assert 'href="/dashboard/fleet"' in html and 'http-equiv="refresh"' in html

    only_rtm = client.get("/dashboard/fleet?exit_point=rtm").get_data(as_text=True)
    assert list(_rows(only_rtm)) == ["rtm-kiosk"]
    dutch = client.get("/dashboard/fleet?lang=nl").get_data(as_text=True)
    assert "De camera werkt niet." in dutch and "Werkt niet" in dutch


def test_the_fleet_page_is_for_officers_and_admins_only(client, world):
    assert client.get("/dashboard/fleet").status_code == 302  # to the login page
    portal_login(client, "shop")
    refused = client.get("/dashboard/fleet")
    assert refused.status_code == 403 and "kiosk" not in refused.get_data(as_text=True)
