"""The trip: a boarding pass or a ferry sailing says whether this exit point
is the traveller's last in the EU, and whether they leave today."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from api.problems import Problem
from api.services.traveller import judge_flight
from tests.api.traveller_support import IN_AMS, app_world, coat, now, today_julian  # noqa: F401

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def leg_block(pnr, origin, destination, carrier, flight, julian, seat="012A", seq="0042"):
    return f"{pnr:<7}{origin}{destination}{carrier:<3}{flight:<5}{julian:03d}Y{seat:>4}{seq:<5}100"


def boarding_pass(*legs) -> str:
    return f"M{len(legs)}CHEN/MEI            E" + "".join(legs)


def flight(origin="AMS", destination="PEK", julian=None):
    return {"kind": "flight", "boarding_pass": boarding_pass(
        leg_block("XYZ789", origin, destination, "KL", "0897", julian or today_julian()))}


def one(r) -> dict:
    assert r.status_code == 200, r.get_json()
    [item] = r.get_json()["items"]
    return item


def test_a_flight_leaving_the_eu_today_validates(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    assert one(phone.validate([form["id"]], trip=flight()))["verdict"] == "validated"


def test_a_flight_within_the_eu_is_not_the_last_exit_and_says_where_to_validate(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    transfer = {"kind": "flight", "boarding_pass": boarding_pass(
        leg_block("XYZ789", "AMS", "CDG", "KL", "1227", today_julian()),
        leg_block("XYZ789", "CDG", "PEK", "AF", "0128", today_julian()))}

    item = one(phone.validate([form["id"]], trip=transfer))

    assert (item["verdict"], item["reason_code"]) == ("refused", "not_last_eu_exit")
    assert "Charles de Gaulle" in item["message"] and "Validate at" in item["message"]
    assert app_world.status(form["id"]) == "issued"


def test_a_transfer_passenger_arriving_here_and_leaving_the_eu_validates_here(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    transfer = {"kind": "flight", "boarding_pass": boarding_pass(
        leg_block("XYZ789", "LIS", "AMS", "KL", "1692", today_julian()),
        leg_block("XYZ789", "AMS", "PEK", "KL", "0897", today_julian()))}
    assert one(phone.validate([form["id"]], trip=transfer))["verdict"] == "validated"


def test_a_boarding_pass_from_another_airport_is_refused_and_names_it(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    item = one(phone.validate([form["id"]], trip=flight(origin="FRA")))
    assert (item["verdict"], item["reason_code"]) == ("refused", "wrong_exit_point")
    assert "Frankfurt" in item["message"]


def test_a_flight_on_another_day_is_refused_and_says_so(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    tomorrow = datetime.now(AMSTERDAM).date() + timedelta(days=1)
    item = one(phone.validate([form["id"]], trip=flight(julian=today_julian(tomorrow))))
    assert (item["verdict"], item["reason_code"]) == ("refused", "not_departing_today")
    assert f"{tomorrow.day} {tomorrow:%B %Y}" in item["message"] and "not today" in item["message"]


def test_an_unreadable_boarding_pass_is_a_422(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    r = phone.validate([form["id"]], trip={"kind": "flight", "boarding_pass": "not a boarding pass"})
    assert (r.status_code, r.get_json()["code"]) == (422, "invalid_boarding_pass")


@pytest.mark.parametrize("utc_now, flight_day, today", [
    # 23:30 UTC on 3 December is 00:30 on 4 December in Amsterdam.
    (datetime(2026, 12, 3, 23, 30, tzinfo=timezone.utc), date(2026, 12, 4), True),
    (datetime(2026, 12, 3, 23, 30, tzinfo=timezone.utc), date(2026, 12, 3), False),
    # 22:59 UTC is still 3 December (23:59 local).
    (datetime(2026, 12, 3, 22, 59, tzinfo=timezone.utc), date(2026, 12, 3), True),
    # Summer time: 22:00 UTC on 30 June is already 1 July.
    (datetime(2026, 6, 30, 22, 0, tzinfo=timezone.utc), date(2026, 7, 1), True),
    (datetime(2026, 6, 30, 21, 59, tzinfo=timezone.utc), date(2026, 7, 1), False),
])
def test_the_departure_day_is_the_amsterdam_calendar_day(utc_now, flight_day, today):
    text = boarding_pass(leg_block("XYZ789", "AMS", "PEK", "KL", "0897", flight_day.timetuple().tm_yday))
    refusal = judge_flight(text, "AMS", utc_now, "Europe/Amsterdam")
    assert (refusal is None) is today
    if not today:
        assert refusal.reason_code == "not_departing_today"


def test_judge_flight_refuses_an_unknown_airport_as_unreadable():
    with pytest.raises(Problem) as raised:
        judge_flight(boarding_pass(leg_block("XYZ789", "AMS", "QQZ", "KL", "0897", 100)), "AMS",
                     datetime(2026, 4, 10, 10, tzinfo=timezone.utc), "Europe/Amsterdam")
    assert raised.value.code == "invalid_boarding_pass"


# --- ferries ------------------------------------------------------------------------

def _sailing(app_world, departs: datetime, port="RTM", country="GB", code="HUL") -> str:
    body = app_world.admin(f"/api/v1/exit-points/{port}/sailings", {
        "operator": "P&O Ferries", "route": "Rotterdam Europoort - Hull", "destination_port": "Hull",
        "destination_code": code, "destination_country": country, "departs_at": departs.isoformat()})
    return body["id"]


def _at_rtm(phone, at: datetime | None = None):
    secret = phone.w.secrets["RTM-T1-01"]
    from shared import presence

    at = at or now()
    beacon = {"post_id": "RTM-T1-01", "seen_at": at.isoformat(),
              "token": presence.token_for_step(bytes.fromhex(secret), "RTM-T1-01", presence.token_step(at))}
    return phone.evidence(gps=phone.gps((51.9510, 4.1360), at=at), beacons=[beacon])


def test_todays_sailings_are_listed_and_one_in_the_window_validates(app_world, monkeypatch):
    # The traveller API's clock at noon today in Amsterdam, so that a sailing
    # in two hours is today's whenever this runs (at 23:55 it would not be).
    from api.resources import traveller as traveller_resource

    noon = datetime.combine(datetime.now(AMSTERDAM).date(), datetime.min.time().replace(hour=12), AMSTERDAM)
    monkeypatch.setattr(traveller_resource, "utcnow", lambda: noon.astimezone(timezone.utc))
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    soon = noon + timedelta(hours=2)
    sailing = _sailing(app_world, soon)
    assert sailing == f"RTM-HUL-{soon.astimezone(AMSTERDAM):%Y-%m-%dT%H:%M}"
    points = {p["code"]: p for p in phone.get("/api/v1/traveller/exit-points").get_json()["items"]}
    assert [s["id"] for s in points["RTM"]["sailings"]] == [sailing]

    item = one(phone.validate([form["id"]], exit_point="RTM", evidence=_at_rtm(phone, noon),
                              trip={"kind": "ferry", "sailing": sailing}))
    assert item["verdict"] == "validated" and item["reference"].startswith("RTM-")


@pytest.mark.parametrize("offset, reason", [
    (timedelta(hours=-1), "sailing_departed"),
    (timedelta(days=1), "not_departing_today"),
])
def test_a_sailing_already_gone_or_on_another_day_is_refused(app_world, offset, reason):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    departs = now() + offset
    if reason == "sailing_departed" and departs.astimezone(AMSTERDAM).date() != datetime.now(AMSTERDAM).date():
        departs = now() - timedelta(minutes=1)  # just after local midnight
    item = one(phone.validate([form["id"]], exit_point="RTM", evidence=_at_rtm(phone),
                              trip={"kind": "ferry", "sailing": _sailing(app_world, departs)}))
    assert (item["verdict"], item["reason_code"]) == ("refused", reason)


def test_the_hours_before_a_sailing_are_a_setting(app_world, app):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    sailing = _sailing(app_world, now() + timedelta(minutes=10))
    app.config["APP_HOURS_BEFORE_SAILING"] = 0.1  # six minutes
    item = one(phone.validate([form["id"]], exit_point="RTM", evidence=_at_rtm(phone),
                              trip={"kind": "ferry", "sailing": sailing}))
    assert (item["verdict"], item["reason_code"]) == ("refused", "too_early")
    assert "You can validate from" in item["message"]


def test_a_ferry_at_an_airport_and_an_unknown_sailing(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    item = one(phone.validate([form["id"]], trip={"kind": "ferry", "sailing": "RTM-HUL-2026-12-03T21:00"}))
    assert item["reason_code"] == "wrong_exit_point"
    r = phone.validate([form["id"]], exit_point="RTM", evidence=_at_rtm(phone),
                       trip={"kind": "ferry", "sailing": "RTM-HUL-1999-01-01T21:00"})
    assert (r.status_code, r.get_json()["code"]) == (422, "sailing_not_found")
