"""The desk's work without the screens: the queue grouped by traveller, the
rules a decision must meet before it is sent, sign-in and token refresh,
QR codes that are not genuine, and whose decisions the queue sends."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from officer_app import wording
from officer_app.desk import Desk, Draft, FindError, NotAnOfficer, group_queue
from shared import qrtoken
from shared.client import ApiError
from shared.decision_queue import DecisionQueue
from shared.officer_client import NotSignedIn, OfficerClient

PASSWORD = "correct-horse-battery"


def check(form_id, ref, opened, *rules, name="Mei Chen", total=10000, lines=1):
    return {"form_id": form_id, "traveller_ref": ref, "opened_at": opened, "traveller_name": name,
            "passport_number": "******678", "passport_country": "CN", "total_cents": total,
            "line_count": lines, "fired_rules": [{"code": r, "detail": r} for r in rules]}


def test_the_queue_groups_a_travellers_forms_and_puts_the_longest_wait_first():
    checks = [
        check("NL1", "mei", "2026-11-28T10:05:00+00:00", "watched_category", total=125000, lines=2),
        check("NL2", "john", "2026-11-28T10:01:00+00:00", "high_value", name="John Smith"),
        check("NL3", "mei", "2026-11-28T10:00:00+00:00", "watched_category", "frequent_traveller", total=5000),
    ]
    mei, john = group_queue(checks)
    assert (mei.name, mei.form_ids, mei.total_cents, mei.line_count) == ("Mei Chen", ("NL3", "NL1"), 130000, 3)
    assert [code for code, _ in mei.rules] == ["watched_category", "frequent_traveller"]
    assert john.form_ids == ("NL2",)
    now = datetime(2026, 11, 28, 11, 7, tzinfo=timezone.utc)
    assert wording.waiting(mei.waited(now)) == "1 h 07 min"
    assert wording.waiting(timedelta(seconds=40)) == "just now"


FORM = {"id": "NL1", "items": [{"line": 1, "total_cents": 125000}, {"line": 2, "total_cents": 24900}]}


@pytest.mark.parametrize("outcome, presence, reason, note, problem", [
    ("validated", {1: True, 2: False}, None, "", "A line is marked not present: validate the lines shown instead."),
    ("partially_validated", {1: False, 2: False}, None, "", "No line is present: reject the form instead."),
    ("partially_validated", {1: True, 2: True}, None, "", "Every line is present: validate the form in full."),
    ("rejected", {}, None, "", "Choose the reason for the rejection."),
    ("rejected", {}, "other", "  ", "Describe the reason in a note."),
])
def test_a_decision_the_api_would_refuse_is_not_sent(outcome, presence, reason, note, problem):
    draft = Draft(FORM, outcome, {1: True, 2: True, **presence}, reason, note)
    assert draft.problems() == [problem]


def test_a_partial_validation_sends_every_line_and_counts_only_those_shown():
    draft = Draft.for_form(FORM, "partially_validated", {2: False})
    assert draft.problems() == []
    assert draft.body() == {"outcome": "partially_validated",
                            "lines": [{"line": 1, "present": True}, {"line": 2, "present": False}]}
    assert draft.validated_total_cents() == 125000
    rejected = Draft.for_form(FORM, "rejected", {})
    rejected.reason_code, rejected.note = "other", "Receipt altered"
    assert rejected.body()["reason_code"] == "other" and rejected.body()["note"] == "Receipt altered"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_token_is_refreshed_before_it_expires(desk_world, desk_server, tmp_path):
    clock = Clock()
    client = OfficerClient(desk_server.url, clock=clock)
    desk = Desk(client, DecisionQueue(tmp_path / "q.sqlite3"), tmp_path)
    officer = desk.sign_in("officer", PASSWORD)
    assert officer.role == "officer" and officer.actor.startswith("user:")
    first = client._token
    clock.now += 0.5 * 3600
    assert not desk.keep_signed_in()
    clock.now += 0.31 * 3600  # 81 % of the lifetime used
    assert desk.keep_signed_in()
    assert client._token != first and client.seconds_left() == pytest.approx(3600)
    assert client.exit_points()[0]["code"] == "AMS"
    assert desk.unlock(PASSWORD) and not desk.unlock("nope")


def test_only_officers_sign_in_and_a_refused_token_means_log_in_again(desk_world, desk_server, tmp_path):
    desk = Desk(OfficerClient(desk_server.url), DecisionQueue(tmp_path / "q.sqlite3"), tmp_path)
    with pytest.raises(NotAnOfficer):
        desk.sign_in("shop", PASSWORD)
    assert desk.officer is None
    with pytest.raises(ApiError) as wrong:
        desk.sign_in("officer", "wrong-password")
    assert wrong.value.code == "invalid_credentials"
    desk.sign_in("officer", PASSWORD)
    desk.client._token = "not-a-token"
    with pytest.raises(NotSignedIn):
        desk.client.checks(exit_point="AMS")


def test_a_qr_code_not_signed_by_the_system_is_called_forged(desk_world, desk_server, tmp_path):
    form = desk_world.waiting_form()
    desk = Desk(OfficerClient(desk_server.url), DecisionQueue(tmp_path / "q.sqlite3"), tmp_path)
    desk.sign_in("officer", PASSWORD)
    assert desk.find(form["qr_payload"]).forms[0]["id"] == form["id"]
    forged = qrtoken.sign_form_token(form["id"], "NL859559001B01", datetime.now(timezone.utc) + timedelta(days=30),
                                     qrtoken.new_private_key(), "made-up-key")
    with pytest.raises(FindError, match="possibly forged"):
        desk.find(forged)
    with pytest.raises(FindError, match="not a tax-free form"):
        desk.find("https://example.com/not-a-form")


def test_a_saved_decision_is_only_sent_with_its_own_officers_token(desk_world, desk_server, tmp_path):
    form = desk_world.waiting_form()
    body = {"outcome": "validated", "lines": [{"line": 1, "present": True}, {"line": 2, "present": True}]}
    with DecisionQueue(tmp_path / "q.sqlite3") as queue:
        queue.add("officer", form["id"], body)
        bad = queue.add("officer", form["id"] + "X", body)  # no such form: refused for good
    with DecisionQueue(tmp_path / "q.sqlite3") as queue:  # reopened: still there
        other = OfficerClient(desk_server.url)
        other.login("officer2", PASSWORD)
        report = queue.sync(other, "officer2")
        assert report.sent == [] and queue.count("officer") == 2
        assert desk_world.decisions(form["id"]) == []

        mine = OfficerClient(desk_server.url)
        mine.login("officer", PASSWORD)
        report = queue.sync(mine, "officer")
        assert [item.form_id for item, _ in report.sent] == [form["id"]]
        [refused] = report.refused
        assert refused.seq == bad.seq and refused.status == 404 and not refused.conflict
        assert queue.count() == 0 and [r.seq for r in queue.refused("officer")] == [bad.seq]
        queue.acknowledge(bad.seq)
        assert queue.refused("officer") == []
    [decision] = desk_world.decisions(form["id"])
    assert decision["actor"] == mine.officer.actor
