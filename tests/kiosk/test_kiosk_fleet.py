"""Operators see a kiosk fail before travellers do: a real kiosk (Kivy,
offscreen, in this process) and a real officer's handheld (the
taxfree-officer app, in a process of its own) send heartbeats to a live
API; the kiosk loses its network, and the supervisor's fleet page and
fleet API show it red with the reason, while the handheld stays green;
the network comes back and so does green."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import pytest

from api.services import fleet
from tests.kiosk.conftest import SwitchableServer, wait_for
from tests.kiosk.test_kiosk_screens import pump, stop, window  # noqa: F401  (window: a fixture)
from tests.portal.portal_support import portal_login
from tests.servers import ROOT

HEARTBEAT = 0.3  # seconds between heartbeats, for the test
AMBER, RED = 2.0, 4.0  # seconds of silence (the FLEET_RULES setting, short for the test)


def states(world) -> dict[str, dict]:
    r = world.get("officer", "/api/v1/devices/fleet")
    assert r.status_code == 200, r.get_json()
    return {d["name"]: d for d in r.get_json()["items"]}


def page_row(client, device_id: str) -> str:
    html = client.get("/dashboard/fleet").get_data(as_text=True)
    start = html.index(f'data-device="{device_id}"')
    return html[start:html.index("</tr>", start)]


@pytest.fixture
def handheld_process(app, world, tmp_path):
    """The officer's app, started as an officer would (taxfree-officer),
    against an API server of its own that stays up."""
    r = world.post("root", "/api/v1/devices", {"name": "handheld", "kind": "handheld", "exit_point": "AMS"})
    assert r.status_code == 201, r.get_json()
    server = SwitchableServer(app).start()
    kivy_home = tempfile.mkdtemp(prefix="kivy-home-")
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "SDL_AUDIODRIVER": "dummy", "KIVY_NO_ARGS": "1",
           "KIVY_HOME": kivy_home, "KIVY_NO_FILELOG": "1", "KIVY_NO_CONSOLELOG": "1",
           "KIVY_USE_DEFAULTCONFIG": "1", "TAXFREE_OFFICER_DEVICE_TOKEN": r.get_json()["token"]}
    env.pop("DISPLAY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "officer_app.main", "--api-url", server.url, "--camera", "none",
         "--data-dir", str(tmp_path / "handheld"), "--heartbeat", str(HEARTBEAT)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield process
    process.terminate()
    process.wait(30)
    server.stop()


def test_a_kiosk_that_loses_its_network_turns_red_on_the_fleet_page_and_green_when_it_is_back(
        window, app, world, api, client, tmp_path, handheld_process):  # noqa: F811
    from kiosk_app.app import KioskApp
    from kiosk_app.config import KioskConfig

    app.config["FLEET"] = fleet.rules_from_dict({"silent_amber_seconds": AMBER, "silent_red_seconds": RED})
    kiosk = KioskApp(KioskConfig(api_url=api.url, device_token=world.devices["kiosk"], exit_point="AMS",
                                 camera="none", sound=False, sync_interval=0.3, heartbeat_interval=HEARTBEAT,
                                 data_dir=tmp_path / "kiosk"))
    kiosk._run_prepare()
    portal_login(client, "officer")
    try:
        def both_green():
            now = states(world)
            return (now["kiosk"]["state"], now["handheld"]["state"]) == ("green", "green") and all(
                now[n]["heartbeat"] is not None for n in ("kiosk", "handheld"))

        wait_for(both_green, timeout=60, pump=pump)
        first = states(world)
        assert first["kiosk"]["heartbeat"]["app_version"] == first["handheld"]["heartbeat"]["app_version"]
        assert first["handheld"]["heartbeat"]["camera_ok"] is None  # started without a camera

        api.stop()  # the kiosk's network is gone; the handheld's is not
        went_offline = time.time()

        def kiosk_red_handheld_green():
            now = states(world)
            return now["kiosk"]["state"] == "red" and now["handheld"]["state"] == "green"

        wait_for(kiosk_red_handheld_green, timeout=60, pump=pump)
        kiosk_now = states(world)["kiosk"]
        assert [r["code"] for r in kiosk_now["reasons"]] == ["silent"]
        assert kiosk_now["reasons"][0]["message"].startswith("No heartbeat for")
        # The supervisor's page says the same.
        row = page_row(client, world.ids["kiosk"])
        assert 'data-state="red"' in row and 'data-reason="silent"' in row and "No heartbeat for" in row
        assert kiosk.heartbeat.failed >= 1  # its heartbeats failed, quietly

        api.start()  # back on the network, same address
        wait_for(lambda: states(world)["kiosk"]["state"] == "green", timeout=60, pump=pump)
        back = states(world)["kiosk"]
        assert back["reasons"] == []
        # Online again since after the outage began.
        assert datetime.fromisoformat(back["heartbeat"]["online_since"]).timestamp() > went_offline - 1
        assert 'data-state="green"' in page_row(client, world.ids["kiosk"])
        assert handheld_process.poll() is None  # the handheld ran throughout
    finally:
        stop(kiosk)
