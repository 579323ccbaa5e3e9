"""Sensor post tokens and validation zones at their edges (shared.presence),
and the app rules of the risk engine."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared import presence, risk

SECRET = bytes(range(32))
POST = presence.Post("AMS-D1-01", "AMS", SECRET)
ZONE = {"type": "Polygon", "coordinates": [[[4.0, 52.0], [5.0, 52.0], [5.0, 53.0], [4.0, 53.0], [4.0, 52.0]]]}
POLICY = presence.PresencePolicy()
STEP_START = datetime.fromtimestamp(30 * 59_000_000, timezone.utc)  # a step begins exactly here


def test_the_token_is_the_first_16_hex_of_hmac_sha256_of_post_and_step():
    import hashlib
    import hmac

    step = presence.token_step(STEP_START)
    expected = hmac.new(SECRET, f"AMS-D1-01:{step}".encode(), hashlib.sha256).hexdigest()[:16]
    assert presence.beacon_token(SECRET, STEP_START, post_id="AMS-D1-01") == expected
    assert step == 59_000_000


def test_the_step_changes_exactly_on_a_multiple_of_30_seconds():
    assert presence.token_step(STEP_START - timedelta(microseconds=1)) == 58_999_999
    assert presence.token_step(STEP_START + timedelta(seconds=29.999999)) == 59_000_000
    assert presence.token_step(STEP_START + timedelta(seconds=30)) == 59_000_001
    with pytest.raises(ValueError):
        presence.token_step(datetime(2026, 12, 3))


def _judge(token: str, now: datetime, seen_at: datetime | None = None, gps=None):
    evidence = presence.Evidence("install", gps, (presence.Sighting("AMS-D1-01", token, seen_at or now),))
    return presence.judge(evidence, "AMS", [ZONE], {"AMS-D1-01": POST}, POLICY, now)


@pytest.mark.parametrize("now_offset", [0, 29.999])  # first and last instant of the step
@pytest.mark.parametrize("steps_back, accepted", [(0, True), (1, True), (2, False)])
def test_tokens_of_the_current_and_the_previous_step_are_accepted(now_offset, steps_back, accepted):
    now = STEP_START + timedelta(seconds=now_offset)
    token = presence.token_for_step(SECRET, "AMS-D1-01", 59_000_000 - steps_back)
    report = _judge(token, now)
    assert (report.beacons == presence.FRESH) is accepted
    if not accepted:
        assert report.beacons == presence.STALE
        assert "replayed token of AMS-D1-01, broadcast 1 min ago" in dict(report.problems)["app_no_fresh_beacon"]


def test_a_token_from_the_next_step_is_not_accepted():
    """A post's clock cannot run ahead of the API's: a future token was computed, not heard."""
    token = presence.token_for_step(SECRET, "AMS-D1-01", 59_000_001)
    assert _judge(token, STEP_START).beacons == presence.INVALID


@pytest.mark.parametrize("heard_seconds_ago, fresh", [(60, True), (61, False), (-30, True), (-31, False)])
def test_a_token_counts_if_heard_at_most_60_seconds_ago(heard_seconds_ago, fresh):
    now = STEP_START + timedelta(seconds=10)
    token = presence.token_for_step(SECRET, "AMS-D1-01", 59_000_000)
    report = _judge(token, now, seen_at=now - timedelta(seconds=heard_seconds_ago))
    assert (report.beacons == presence.FRESH) is fresh


def test_a_token_the_post_never_sent_is_called_forged():
    report = _judge("0123456789abcdef", STEP_START)
    assert report.beacons == presence.INVALID
    assert "never broadcast (forged)" in dict(report.problems)["app_beacon_invalid"]


@pytest.mark.parametrize("lat, lon, inside", [
    (52.5, 4.5, True),
    (52.0, 4.5, True),  # on the southern edge
    (52.5, 5.0, True),  # on the eastern edge
    (53.0, 5.0, True),  # a corner
    (51.9999999, 4.5, False),  # just south of the edge
    (52.5, 5.0000001, False),  # just east
    (4.5, 52.5, False),  # latitude and longitude swapped
])
def test_zone_edges_count_as_inside_and_longitude_comes_first(lat, lon, inside):
    assert presence.point_in_zone(lat, lon, ZONE) is inside


def test_a_hole_in_a_zone_is_outside_but_its_edge_is_inside():
    with_hole = {"type": "Polygon", "coordinates": ZONE["coordinates"] + [
        [[4.4, 52.4], [4.6, 52.4], [4.6, 52.6], [4.4, 52.6], [4.4, 52.4]]]}
    assert not presence.point_in_zone(52.5, 4.5, with_hole)
    assert presence.point_in_zone(52.4, 4.5, with_hole)
    assert presence.point_in_zone(52.3, 4.5, with_hole)


@pytest.mark.parametrize("polygon, message", [
    ({"type": "Point", "coordinates": [4, 52]}, "Polygon"),
    ({"type": "Polygon", "coordinates": [[[4, 52], [5, 52], [4, 52]]]}, "four positions"),
    ({"type": "Polygon", "coordinates": [[[4, 52], [5, 52], [5, 53], [4, 53]]]}, "ends where it starts"),
    ({"type": "Polygon", "coordinates": [[[52, 200], [52, 5], [53, 5], [52, 200]]]}, "longitude first"),
])
def test_unusable_zones_are_refused_with_a_reason(polygon, message):
    with pytest.raises(presence.ZoneError, match=message):
        presence.check_polygon(polygon)


def _gps(accuracy=10.0, mock=False, age=0, at=(52.5, 4.5)):
    return presence.GpsFix(at[0], at[1], accuracy, mock, STEP_START - timedelta(seconds=age))


@pytest.mark.parametrize("age, stale", [(120, False), (121, True)])
def test_a_gps_position_counts_if_at_most_two_minutes_old(age, stale):
    token = presence.token_for_step(SECRET, "AMS-D1-01", 59_000_000)
    report = _judge(token, STEP_START, gps=_gps(age=age))
    assert ("app_gps_stale" in dict(report.problems)) is stale


def test_good_evidence_has_no_problem_and_places_the_phone_here():
    token = presence.token_for_step(SECRET, "AMS-D1-01", 59_000_000)
    report = _judge(token, STEP_START, gps=_gps())
    assert report.problems == () and report.here


def _assess(report, install_age=120.0, others=0):
    facts = risk.ScanFacts("NL1", 10_000, frozenset({"clothing"}), "NL859559001B01", "k", "CN", 1,
                           app=risk.AppFacts(report, install_age, others))
    return risk.assess(facts, risk.RiskPolicy(sample_rate=0.0), b"sampling-key")


@pytest.mark.parametrize("install_age, fires", [(29.99, True), (30.0, False)])
def test_first_use_fires_for_an_install_younger_than_30_minutes(install_age, fires):
    good = presence.PresenceReport("AMS", presence.FRESH, True)
    assessment = _assess(good, install_age=install_age)
    assert [r.code for r in assessment.fired] == (["app_first_use"] if fires else [])


@pytest.mark.parametrize("others, fires", [(0, False), (1, True), (3, True)])
def test_one_other_passport_on_the_phone_is_enough_for_a_check(others, fires):
    good = presence.PresenceReport("AMS", presence.FRESH, True)
    assert ([r.code for r in _assess(good, others=others).fired] == ["app_many_passports"]) is fires


def test_every_presence_problem_is_a_fired_rule_with_its_detail():
    weak = presence.PresenceReport("AMS", presence.NONE, False, (
        ("app_no_fresh_beacon", "No current token."), ("app_gps_accuracy", "GPS accurate to 500 m.")))
    assessment = _assess(weak)
    assert assessment.verdict == risk.CHECK_REQUIRED
    assert [(r.code, r.detail) for r in assessment.fired] == list(weak.problems)


def test_a_kiosk_scan_has_no_app_rules():
    facts = risk.ScanFacts("NL1", 10_000, frozenset({"clothing"}), "NL859559001B01", "k", "CN", 1)
    assert risk.assess(facts, risk.RiskPolicy(sample_rate=0.0), b"sampling-key").fired == ()


def test_presence_settings_are_data_and_misspellings_are_refused():
    assert presence.policy_from_dict({"gps_max_accuracy_m": 25}).gps_max_accuracy_m == 25
    with pytest.raises(ValueError, match="gps_accuracy"):
        presence.policy_from_dict({"gps_accuracy": 25})
