"""The device fleet: the rules that make a device green, amber or red, at
their boundaries, and the heartbeat and fleet endpoints as devices and
supervisors use them."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from api.services import fleet
from api.services.fleet import AMBER, GREEN, RED, FleetRules, Health, OpeningHours

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
RULES = FleetRules()
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def health(**changes) -> Health:
    values = dict(received_at=NOW, queue_depth=0, oldest_queued_at=None, queue_writable=True,
                  camera_ok=True, free_disk_bytes=50 * 10 ** 9, clock_skew_seconds=0.0)
    values.update(changes)
    return Health(**values)


def judge(h: Health | None, *, open_now=True, registered_at=NOW - timedelta(days=30), rules=RULES):
    state, reasons = fleet.assess(h, NOW, registered_at=registered_at, open_now=open_now, rules=rules)
    return state, [(r.code, r.state) for r in reasons]


def test_a_device_that_reported_just_now_with_nothing_wrong_is_green():
    assert judge(health()) == (GREEN, [])


@pytest.mark.parametrize("silent, expected", [
    (120, (GREEN, [])),
    (121, (AMBER, [("silent", AMBER)])),
    (600, (AMBER, [("silent", AMBER)])),
    (601, (RED, [("silent", RED)])),
])
def test_silence_is_amber_after_two_minutes_and_red_after_ten(silent, expected):
    assert judge(health(received_at=NOW - timedelta(seconds=silent))) == expected


def test_silence_while_the_exit_point_is_closed_is_expected():
    assert judge(health(received_at=NOW - timedelta(hours=8)), open_now=False) == (GREEN, [])


def test_a_device_that_never_reported_counts_its_silence_from_registration():
    assert judge(None, registered_at=NOW - timedelta(seconds=60)) == (GREEN, [])
    assert judge(None, registered_at=NOW - timedelta(minutes=11)) == (RED, [("never_seen", RED)])
    assert judge(None, registered_at=NOW - timedelta(minutes=11), open_now=False) == (GREEN, [])


@pytest.mark.parametrize("depth, expected", [(20, GREEN), (21, AMBER)])
def test_more_than_twenty_items_in_the_offline_queue_is_amber(depth, expected):
    assert judge(health(queue_depth=depth))[0] == expected


@pytest.mark.parametrize("waited, expected", [(900, (GREEN, [])), (901, (RED, [("queue_old", RED)]))])
def test_an_item_waiting_in_the_offline_queue_for_more_than_fifteen_minutes_is_red(waited, expected):
    assert judge(health(queue_depth=1, oldest_queued_at=NOW - timedelta(seconds=waited))) == expected


def test_an_offline_queue_that_cannot_be_written_is_red():
    assert judge(health(queue_writable=False)) == (RED, [("queue_unwritable", RED)])


def test_a_broken_camera_is_red_and_no_camera_at_all_is_fine():
    assert judge(health(camera_ok=False)) == (RED, [("camera", RED)])
    assert judge(health(camera_ok=None)) == (GREEN, [])


@pytest.mark.parametrize("free, expected", [
    (1024 ** 3, GREEN), (1024 ** 3 - 1, AMBER), (200 * 1024 ** 2, AMBER), (200 * 1024 ** 2 - 1, RED),
])
def test_free_disk_under_one_gibibyte_is_amber_and_under_200_mebibytes_red(free, expected):
    assert judge(health(free_disk_bytes=free))[0] == expected


@pytest.mark.parametrize("skew, expected", [(60.0, GREEN), (-60.0, GREEN), (60.5, RED), (-61.0, RED)])
def test_a_clock_more_than_a_minute_off_either_way_is_red(skew, expected):
    assert judge(health(clock_skew_seconds=skew))[0] == expected


def test_the_state_is_the_worst_reason_and_every_reason_is_listed_worst_first():
    state, reasons = judge(health(received_at=NOW - timedelta(minutes=5), queue_depth=40, camera_ok=False))
    assert state == RED
    assert reasons == [("camera", RED), ("silent", AMBER), ("queue_depth", AMBER)]


def test_the_thresholds_are_settings():
    strict = fleet.rules_from_dict({"silent_amber_seconds": 1, "silent_red_seconds": 3})
    assert judge(health(received_at=NOW - timedelta(seconds=2)), rules=strict) == (AMBER, [("silent", AMBER)])
    assert judge(health(received_at=NOW - timedelta(seconds=4)), rules=strict) == (RED, [("silent", RED)])
    with pytest.raises(ValueError, match="silent_after"):
        fleet.rules_from_dict({"silent_after": 5})
    with pytest.raises(ValueError):
        fleet.rules_from_dict({"silent_amber_seconds": 700})  # amber after red


def test_durations_read_as_people_say_them():
    assert [fleet.duration_text(s) for s in (45, 119, 120, 3599, 3600 + 5 * 60, 47 * 3600, 48 * 3600, 20 * 86400)] == [
        "45 s", "119 s", "2 min", "59 min", "1 h 05 min", "47 h 00 min", "2 days", "20 days"]


def test_reasons_read_as_sentences():
    state, reasons = fleet.assess(health(received_at=NOW - timedelta(minutes=12), free_disk_bytes=150 * 10 ** 6,
                                         clock_skew_seconds=-95), NOW,
                                  registered_at=NOW, open_now=True, rules=RULES)
    assert [r.message for r in reasons] == [
        "No heartbeat for 12 min.", "Only 150 MB of disk free.", "The device's clock is 95 s off."]


@pytest.mark.parametrize("text, inside, outside", [
    ("05:30-23:00", [time(5, 30), time(12), time(22, 59)], [time(5, 29), time(23, 0), time(2)]),
    ("22:00-06:00", [time(22), time(23, 59), time(0), time(5, 59)], [time(6), time(12), time(21, 59)]),
    ("00:00-24:00", [time(0), time(12), time(23, 59)], []),
])
def test_opening_hours_in_local_time_overnight_included(text, inside, outside):
    hours = fleet.parse_opening_hours(text)
    assert [hours.is_open(t) for t in inside] == [True] * len(inside)
    assert [hours.is_open(t) for t in outside] == [False] * len(outside)


def test_opening_hours_are_judged_in_the_member_states_time_zone():
    # 05:00 UTC in December is 06:00 in Amsterdam.
    at = datetime(2026, 12, 3, 5, 0, tzinfo=timezone.utc)
    assert fleet.is_open("06:00-22:00", at, AMSTERDAM)
    assert not fleet.is_open("06:00-22:00", at - timedelta(seconds=1), AMSTERDAM)
    assert fleet.is_open(None, at, AMSTERDAM)  # no hours: around the clock


@pytest.mark.parametrize("bad", ["5:30-23:00", "05:30", "25:00-06:00", "24:00-06:00", "06:00-24:30", "x"])
def test_opening_hours_that_are_not_times_are_refused(bad):
    with pytest.raises(ValueError):
        fleet.parse_opening_hours(bad)
    assert OpeningHours(time(6), time(6)).is_open(time(3))  # same opening and closing: always open


# --- through the API ------------------------------------------------------------

def beat(world, device="kiosk", **changes):
    body = {"app_version": "0.1.0", "online_since": "2026-12-03T08:00:00+00:00", "queue_depth": 0,
            "oldest_queued_at": None, "queue_writable": True, "camera_ok": True,
            "device_clock": datetime.now(timezone.utc).isoformat(), "free_disk_bytes": 50 * 10 ** 9}
    body.update(changes)
    return world.post(device, "/api/v1/devices/me/heartbeat", body)


def fleet_of(world, who="officer") -> dict:
    r = world.get(who, "/api/v1/devices/fleet")
    assert r.status_code == 200, r.get_json()
    return {d["name"]: d for d in r.get_json()["items"]}


def test_a_heartbeat_is_kept_per_device_and_the_server_computes_the_clock_skew(world):
    slow = datetime.now(timezone.utc) - timedelta(minutes=3)
    r = beat(world, device_clock=slow.isoformat(), queue_depth=3,
             oldest_queued_at=(slow - timedelta(minutes=1)).isoformat())
    assert r.status_code == 200, r.get_json()
    assert -185 < r.get_json()["clock_skew_seconds"] < -175
    devices = fleet_of(world)
    kiosk = devices["kiosk"]
    assert kiosk["exit_point"] == "AMS" and kiosk["heartbeat"]["queue_depth"] == 3
    assert kiosk["state"] == "red"
    assert [r["code"] for r in kiosk["reasons"]] == ["clock_skew"]
    assert kiosk["reasons"][0]["message"].startswith("The device's clock is 3 min off")

    # The next heartbeat replaces it: one row per device.
    assert beat(world).status_code == 200
    assert fleet_of(world)["kiosk"]["state"] == "green"
    assert fleet_of(world)["kiosk"]["heartbeat"]["queue_depth"] == 0


def test_a_device_that_never_sent_a_heartbeat_is_listed_and_revoked_devices_are_not(world, app):
    assert beat(world).status_code == 200
    devices = fleet_of(world, "root")
    assert set(devices) == {"kiosk", "rtm-kiosk"}
    assert devices["rtm-kiosk"]["heartbeat"] is None and devices["rtm-kiosk"]["last_seen"] is None
    assert world.client.delete(f"/api/v1/devices/{world.ids['rtm-kiosk']}",
                               headers=world.auth("root")).status_code == 200
    assert set(fleet_of(world)) == {"kiosk"}


def test_silence_during_opening_hours_turns_a_device_red_and_at_night_it_does_not(world, app):
    from api import database
    from api.models import DeviceHeartbeat, ExitPoint

    assert beat(world).status_code == 200
    with app.app_context():
        session = database.session()
        session.get(DeviceHeartbeat, world.ids["kiosk"]).received_at -= timedelta(minutes=11)
        session.commit()
    kiosk = fleet_of(world)["kiosk"]
    assert kiosk["state"] == "red" and [r["code"] for r in kiosk["reasons"]] == ["silent"]
    assert kiosk["reasons"][0]["message"] == "No heartbeat for 11 min."
    # Closed at this moment: the same silence is no fault.
    with app.app_context():
        session = database.session()
        ams = session.query(ExitPoint).filter_by(code="AMS").one()
        now = datetime.now(AMSTERDAM)
        ams.opening_hours = f"{(now + timedelta(hours=1)):%H}:00-{(now + timedelta(hours=2)):%H}:00"
        session.commit()
    kiosk = fleet_of(world)["kiosk"]
    assert kiosk["exit_point_open"] is False and kiosk["state"] == "green"


def test_only_devices_send_heartbeats_and_only_supervisors_read_the_fleet(world, client):
    assert beat(world, "officer").status_code == 403
    assert client.post("/api/v1/devices/me/heartbeat", json={}).status_code == 401
    for who in ("shop", "refunds", "kiosk"):
        assert world.get(who, "/api/v1/devices/fleet").status_code == 403, who
    assert client.get("/api/v1/devices/fleet").status_code == 401


@pytest.mark.parametrize("changes, field", [
    ({"queue_depth": -1}, "queue_depth"),
    ({"queue_depth": "3"}, "queue_depth"),
    ({"device_clock": "2026-12-03T10:00:00"}, "device_clock"),  # no time zone
    ({"device_clock": "9999-12-31T23:30:00-05:00"}, "device_clock"),
    ({"free_disk_bytes": None}, "free_disk_bytes"),
    ({"app_version": ""}, "app_version"),
    ({"serial": "x"}, "serial"),
    ({"device_id": "another-device"}, "device_id"),  # a device reports for itself only
])
def test_a_malformed_heartbeat_is_a_422_problem_and_nothing_is_kept(world, changes, field):
    r = beat(world, **changes)
    assert r.status_code == 422, r.get_json()
    assert r.content_type == "application/problem+json" and field in r.get_json()["errors"]
    assert fleet_of(world)["kiosk"]["heartbeat"] is None


def test_a_kiosk_whose_clock_battery_died_still_reports_and_shows_red(world):
    r = beat(world, device_clock="1970-01-01T00:00:10+00:00")
    assert r.status_code == 200, r.get_json()
    assert fleet_of(world)["kiosk"]["reasons"][0]["code"] == "clock_skew"


def test_exit_points_carry_opening_hours(world):
    r = world.post("root", "/api/v1/exit-points", {"code": "EIN", "name": "Eindhoven", "kind": "airport",
                                                   "opening_hours": "05:30-23:00"})
    assert r.status_code == 201 and r.get_json()["opening_hours"] == "05:30-23:00"
    bad = world.post("root", "/api/v1/exit-points", {"code": "GRQ", "name": "Groningen", "kind": "airport",
                                                     "opening_hours": "morning"})
    assert bad.status_code == 422 and "opening_hours" in bad.get_json()["errors"]
