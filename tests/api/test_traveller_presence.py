"""The traveller's phone proves it is at the exit point, through the real
API: good evidence validates; every way of faking presence sends the
traveller to the desk (with the reason on the check, for the officer) or,
when nothing places the phone here at all, leaves the form untouched."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.api.traveller_support import OUTSIDE_AMS, app_world, coat, rules_of, watch  # noqa: F401


def one(verdicts: dict) -> dict:
    [item] = verdicts["items"]
    return item


def sent_to_desk(app_world, form_id: str, verdicts: dict, rule: str) -> dict:
    """The verdict is check_required, with a desk pass; the check names ``rule``."""
    item = one(verdicts)
    assert (item["verdict"], item["reference"]) == ("check_required", None), item
    assert item["desk_location"] == "Departures 2"
    assert verdicts["desk_pass"]
    assert app_world.status(form_id) == "check_required"
    check = app_world.check(form_id)
    assert rule in rules_of(check), check["fired_rules"]
    return check


def test_good_evidence_validates_through_the_same_trail_as_a_kiosk_scan(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()

    verdicts = phone.verdicts([form["id"]])

    item = one(verdicts)
    assert item["verdict"] == "validated" and item["reason_code"] is None
    assert item["reference"].startswith("AMS-") and len(item["reference"]) == 10
    assert verdicts["desk_pass"] is None
    assert app_world.status(form["id"]) == "validated"
    events = app_world.events(form["id"])
    assert [e["type"] for e in events] == ["form.issued", "form.validated", "form.scanned"]
    assert events[1]["data"] == {"by": "scan", "channel": "app"}
    assert events[2]["data"] == {"verdict": "validated", "reason_code": None, "channel": "app"}
    assert events[1]["actor"].startswith("traveller:") and events[1]["exit_point"] == "AMS"
    assert phone.passport not in str(events)
    # The same request again (a retry) replays; a new one repeats the verdict.
    again = phone.verdicts([form["id"]])
    assert one(again)["verdict"] == "validated" and one(again)["reference"] == item["reference"]


def test_the_scan_row_records_the_app_channel_and_the_install_not_a_device(app_world):
    from api import database

    form = app_world.issue_for(coat())
    app_world.phone().signed_in().verdicts([form["id"]])
    with app_world.app.app_context():
        row = database.session().execute(text(
            "SELECT channel, device_id, install_key FROM scans WHERE form_id = :id"), {"id": form["id"]}).one()
    assert row[0] == "app" and row[1] is None and len(row[2]) == 64


def test_a_watch_still_goes_to_the_desk_whatever_the_evidence(app_world):
    form = app_world.issue_for(watch())
    check = sent_to_desk(app_world, form["id"], app_world.phone().signed_in().verdicts([form["id"]]),
                         "watched_category")
    assert not [r for r in rules_of(check) if r.startswith("app_")]


def test_a_replayed_token_older_than_its_window_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    # Heard "just now", but it is the token of three steps (90 s) ago.
    evidence = phone.evidence(beacons=[phone.beacon(steps_ago=3)])

    check = sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=evidence),
                         "app_no_fresh_beacon")
    assert "replayed token of AMS-D2-01" in check["fired_rules"][0]["detail"]


def test_a_token_heard_too_long_ago_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    evidence = phone.evidence(beacons=[phone.beacon(seen_seconds_ago=61)])
    sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=evidence), "app_no_fresh_beacon")


def test_the_token_of_another_exit_points_post_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    # Rotterdam's post, current and genuine, sent from inside Schiphol's zone.
    evidence = phone.evidence(beacons=[phone.beacon("RTM-T1-01")])

    check = sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=evidence),
                         "app_beacon_invalid")
    assert "RTM-T1-01 of RTM, not of AMS" in check["fired_rules"][0]["detail"]
    assert "app_no_fresh_beacon" in rules_of(check)


@pytest.mark.parametrize("beacon", [
    {"post_id": "AMS-D2-01", "token": "0123456789abcdef"},  # forged token of a real post
    {"post_id": "AMS-D9-99", "token": "0123456789abcdef"},  # a post that does not exist
])
def test_a_forged_token_sends_to_the_desk_even_beside_a_genuine_one(app_world, beacon):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    forged = {**phone.beacon(), **beacon}
    evidence = phone.evidence(beacons=[phone.beacon(), forged])

    check = sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=evidence),
                         "app_beacon_invalid")
    assert rules_of(check) == ["app_beacon_invalid"]  # the genuine token counted: only the forgery fired


def test_a_gps_position_outside_the_zone_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    evidence = phone.evidence(gps=phone.gps(OUTSIDE_AMS))
    check = sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=evidence),
                         "app_outside_zone")
    assert "52.30" not in str(check["fired_rules"])  # no coordinates in the trail


def test_a_mock_location_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    evidence = phone.evidence(gps=phone.gps(mock=True))
    check = sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=evidence),
                         "app_mock_location")
    assert rules_of(check) == ["app_mock_location"]


def test_no_beacon_at_all_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    check = sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=phone.evidence(beacons=[])),
                         "app_no_fresh_beacon")
    assert check["fired_rules"][0]["detail"] == "No current token from a sensor post of AMS."


def test_a_gps_accuracy_of_500_m_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    check = sent_to_desk(app_world, form["id"],
                         phone.verdicts([form["id"]], evidence=phone.evidence(gps=phone.gps(accuracy=500))),
                         "app_gps_accuracy")
    assert check["fired_rules"][0]["detail"] == "GPS accurate to 500 m; at most 50 m is accepted."


@pytest.mark.parametrize("accuracy, fires", [(50.0, False), (50.1, True)])
def test_the_gps_accuracy_threshold_is_50_m_inclusive(app_world, accuracy, fires):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    verdicts = phone.verdicts([form["id"]], evidence=phone.evidence(gps=phone.gps(accuracy=accuracy)))
    assert one(verdicts)["verdict"] == ("check_required" if fires else "validated")


def test_no_gps_fix_sends_to_the_desk(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    check = sent_to_desk(app_world, form["id"], phone.verdicts([form["id"]], evidence=phone.evidence(gps=None)),
                         "app_outside_zone")
    assert check["fired_rules"][0]["detail"] == "The phone had no GPS position."


def test_a_second_passport_on_the_same_phone_within_the_hour_sends_to_the_desk(app_world):
    mei = app_world.issue_for(coat())
    john = app_world.issue_for(coat(), passport_number="568432190", passport_country="US",
                               nationality="US", residence_country="US", date_of_birth="1979-11-02")
    phone = app_world.phone().signed_in()
    assert one(phone.verdicts([mei["id"]]))["verdict"] == "validated"

    # The same phone signs in with another passport and validates.
    other = app_world.phone(passport="568432190", country="US", dob="1979-11-02", install_id=phone.install_id)
    other.signed_in()
    check = sent_to_desk(app_world, john["id"], other.verdicts([john["id"]]), "app_many_passports")
    assert check["fired_rules"][-1]["detail"] == "This phone validated forms of 1 other passport(s) in the last 60 min."


@pytest.mark.parametrize("minutes_ago, fires", [(59.9, True), (60.1, False)])
def test_the_second_passport_window_is_one_hour(app_world, minutes_ago, fires):
    mei = app_world.issue_for(coat())
    john = app_world.issue_for(coat(), passport_number="568432190", passport_country="US",
                               nationality="US", residence_country="US", date_of_birth="1979-11-02")
    phone = app_world.phone().signed_in()
    phone.verdicts([mei["id"]])
    app_world.backdate_app_scans(phone.install_id, minutes_ago)

    other = app_world.phone(passport="568432190", country="US", dob="1979-11-02", install_id=phone.install_id)
    verdict = one(other.signed_in().verdicts([john["id"]]))["verdict"]
    assert verdict == ("check_required" if fires else "validated")


@pytest.mark.parametrize("installed_minutes_ago, fires", [(0, True), (29.9, True), (30.1, False)])
def test_first_use_of_a_phone_sends_to_the_desk(app_world, installed_minutes_ago, fires):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in(installed_minutes_ago=installed_minutes_ago)
    verdicts = phone.verdicts([form["id"]])
    assert one(verdicts)["verdict"] == ("check_required" if fires else "validated")
    if fires:
        assert rules_of(app_world.check(form["id"])) == ["app_first_use"]


def test_nothing_placing_the_phone_here_leaves_the_form_as_it_is(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    # At home: no beacon, GPS far from every zone.
    evidence = phone.evidence(beacons=[], gps=phone.gps((52.3676, 4.9041)))

    verdicts = phone.verdicts([form["id"]], evidence=evidence)

    item = one(verdicts)
    assert (item["verdict"], item["reason_code"]) == ("refused", "not_at_exit_point")
    assert "Amsterdam Airport" not in item["message"] and "validation zone" in item["message"]
    assert verdicts["desk_pass"] is None
    assert app_world.status(form["id"]) == "issued"
    # At the exit point afterwards, it validates.
    assert one(phone.verdicts([form["id"]]))["verdict"] == "validated"


def test_evidence_from_another_install_than_the_sign_in_is_refused(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    evidence = {**phone.evidence(), "install_id": "0f0e0d0c-0000-4000-8000-000000000000"}
    r = phone.validate([form["id"]], evidence=evidence)
    assert (r.status_code, r.get_json()["code"]) == (422, "install_mismatch")
    assert app_world.status(form["id"]) == "issued"


def test_a_validation_needs_an_idempotency_key_and_a_retry_replays(app_world):
    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    body = {"exit_point": "AMS", "form_ids": [form["id"]], "evidence": phone.evidence(), "trip": None}
    r = phone.post("/api/v1/traveller/validations", body)
    assert (r.status_code, r.get_json()["code"]) == (428, "idempotency_key_required")
    first = phone.post("/api/v1/traveller/validations", body, **{"Idempotency-Key": "v-1"})
    again = phone.post("/api/v1/traveller/validations", body, **{"Idempotency-Key": "v-1"})
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert len([e for e in app_world.events(form["id"]) if e["type"] == "form.scanned"]) == 1


def test_another_passports_form_looks_like_no_form_and_is_left_alone(app_world):
    theirs = app_world.issue_for(coat(), passport_number="568432190", passport_country="US",
                                 nationality="US", residence_country="US", date_of_birth="1979-11-02")
    phone = app_world.phone().signed_in()
    item = one(phone.verdicts([theirs["id"], ]))
    assert (item["verdict"], item["reason_code"]) == ("refused", "form_not_found")
    # From outside the zone too (the phone is refused before any form is judged).
    outside = one(phone.verdicts([theirs["id"]], evidence=phone.evidence(gps=phone.gps(OUTSIDE_AMS))))
    assert (outside["verdict"], outside["reason_code"]) == ("refused", "form_not_found")
    assert app_world.status(theirs["id"]) == "issued"
    # Not even a scan on its trail.
    assert [e["type"] for e in app_world.events(theirs["id"])] == ["form.issued"]
