"""The customs desk and the export deadline: a validation at the desk is
refused once the deadline day has ended in Amsterdam, except for a check
opened before it ended and decided within the grace period
(DESK_DECISION_GRACE_MINUTES); a rejection stays possible; checks left
waiting expire like issued forms (flask expire-forms). A decision made
offline counts at the moment it was made (decided_at)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from api import database
from api.auth import Principal
from api.models import Check, Duty, Form, User
from api.services import decisions
from api.problems import Problem
from shared import rules
from tests.builders import item, traveller

AMSTERDAM = "Europe/Amsterdam"
PROBLEM = "application/problem+json"
WATCH = item(60500, category="watches", description="Diver watch")


def now() -> datetime:
    return datetime.now(timezone.utc)


def at_the_desk(world) -> dict:
    form = world.issue("shop", WATCH, traveller=traveller(passport_number=f"D{world.invoices + 1:07d}"))
    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "check_required"
    return form


def set_clock(app, form_id: str, deadline: date, opened_at: datetime, on_duty_since: datetime) -> None:
    """The form's deadline, when its check was opened, and since when the
    officers have been on duty: as if all this had happened then."""
    with app.app_context():
        session = database.session()
        session.execute(update(Form).where(Form.id == form_id).values(export_deadline=deadline))
        session.execute(update(Check).where(Check.form_id == form_id).values(opened_at=opened_at))
        session.execute(update(Duty).values(started_at=on_duty_since))
        session.commit()


def decide(world, form_id, body, who="officer"):
    return world.post(who, f"/api/v1/forms/{form_id}/decision", body)


def problem_of(r, status, code) -> dict:
    assert r.status_code == status, r.get_json()
    assert r.mimetype == PROBLEM
    assert r.get_json()["code"] == code
    return r.get_json()


# A deadline that ended three days ago in Amsterdam: the boundaries around
# its end are all in the past, where a handheld may date a decision.
def ended_deadline() -> tuple[date, datetime]:
    deadline = rules.local_today(now(), AMSTERDAM) - timedelta(days=3)
    return deadline, rules.deadline_end_utc(deadline, AMSTERDAM)


@pytest.fixture
def late(app, world):
    """A form at the desk whose check was opened half an hour before its
    deadline ended; the officer signed on well before that."""
    form = at_the_desk(world)
    deadline, ends = ended_deadline()
    set_clock(app, form["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))
    return form, ends


def validate_at(world, form_id, moment: datetime):
    return decide(world, form_id, {"outcome": "validated", "decided_at": moment.isoformat()})


def test_a_validation_in_the_last_minute_of_the_deadline_day_is_accepted(world, late):
    form, ends = late

    r = validate_at(world, form["id"], ends - timedelta(minutes=1))

    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "validated"
    assert datetime.fromisoformat(body["validated_at"]) == ends - timedelta(minutes=1)
    last = world.get("officer", f"/api/v1/forms/{form['id']}/events").get_json()["items"][-1]
    assert last["data"]["decided_at"] == (ends - timedelta(minutes=1)).isoformat()


def test_the_first_minute_after_is_within_the_grace_of_a_check_opened_in_time(world, late):
    form, ends = late
    assert validate_at(world, form["id"], ends + timedelta(minutes=1)).status_code == 200


def test_the_last_second_of_the_grace_period_is_accepted(world, late):
    form, ends = late
    assert validate_at(world, form["id"], ends + timedelta(minutes=120) - timedelta(seconds=1)).status_code == 200


def test_a_validation_when_the_grace_period_is_over_is_refused(world, late):
    form, ends = late

    problem = problem_of(validate_at(world, form["id"], ends + timedelta(minutes=120)), 422, "deadline_passed")

    assert problem["errors"] == {"outcome": ["Past the export deadline: only a rejection can be recorded."]}
    queue = world.get("officer", "/api/v1/checks?exit_point=AMS").get_json()["items"]
    assert [c["form_id"] for c in queue] == [form["id"]]
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "check_required"


def test_a_partial_validation_after_the_grace_period_is_refused_too(app, world):
    form = world.issue("shop", WATCH, item(12100), traveller=traveller(passport_number="D7777777"))
    world.scan("kiosk", form["qr_payload"])
    deadline, ends = ended_deadline()
    set_clock(app, form["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))

    r = decide(world, form["id"], {"outcome": "partially_validated", "decided_at": (ends + timedelta(hours=2)).isoformat(),
                                   "lines": [{"line": 1, "present": True}, {"line": 2, "present": False}]})

    problem_of(r, 422, "deadline_passed")


def test_a_check_opened_after_the_deadline_gets_no_grace(app, world):
    form = at_the_desk(world)
    deadline, ends = ended_deadline()
    # Opened at midnight in Amsterdam, the first instant after the deadline day.
    set_clock(app, form["id"], deadline, ends, ends - timedelta(hours=2))

    problem_of(validate_at(world, form["id"], ends + timedelta(minutes=1)), 422, "deadline_passed")


def test_a_rejection_stays_possible_after_the_deadline(world, late):
    form, ends = late
    world.sign_on("officer", "AMS")  # today's shift

    r = decide(world, form["id"], {"outcome": "rejected", "reason_code": "deadline_passed"})

    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "rejected"


def test_an_officer_deciding_now_on_a_form_whose_deadline_ended_days_ago_cannot_validate_it(world, late):
    form, _ends = late
    world.sign_on("officer", "AMS")  # today's shift
    problem_of(decide(world, form["id"], {"outcome": "validated"}), 422, "deadline_passed")


def test_the_grace_period_is_a_setting(app, world, late):
    form, ends = late
    app.config["DESK_DECISION_GRACE_MINUTES"] = 30
    problem_of(validate_at(world, form["id"], ends + timedelta(minutes=30)), 422, "deadline_passed")
    assert validate_at(world, form["id"], ends + timedelta(minutes=29)).status_code == 200


@pytest.mark.parametrize("moment", [timedelta(hours=1), -timedelta(days=15)])
def test_a_decision_dated_in_the_future_or_weeks_ago_is_refused(world, moment):
    form = at_the_desk(world)
    r = validate_at(world, form["id"], now() + moment)
    assert list(problem_of(r, 422, "invalid_request")["errors"]) == ["decided_at"]


def test_a_decision_dated_before_its_check_was_opened_is_refused(app, world, late):
    """Else a decision made after the deadline, dated back to before the
    check existed, would pass as made in time."""
    form, ends = late
    problem = problem_of(validate_at(world, form["id"], ends - timedelta(hours=1)), 422, "invalid_request")
    assert problem["errors"] == {"decided_at": ["Must not be before the check was opened."]}
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "check_required"


def test_a_decision_is_never_dated_before_its_check_was_opened(world):
    form = at_the_desk(world)
    # A handheld's clock running a few minutes behind the API's.
    r = validate_at(world, form["id"], now() - timedelta(minutes=4))
    assert r.status_code == 200, r.get_json()
    [check] = world.get("officer", "/api/v1/checks?status=decided").get_json()["items"]
    assert check["decided_at"] >= check["opened_at"]
    assert r.get_json()["validated_at"] == check["decided_at"]


# --- the same rules in the service, on days the clocks change ---------------------

@pytest.mark.parametrize("deadline, instant, allowed", [
    # 31 October 2027 is 25 hours long: it ends at 23:00 UTC.
    (date(2027, 10, 31), datetime(2027, 10, 31, 22, 59, tzinfo=timezone.utc), True),
    (date(2027, 10, 31), datetime(2027, 11, 1, 0, 59, tzinfo=timezone.utc), True),
    (date(2027, 10, 31), datetime(2027, 11, 1, 1, 0, tzinfo=timezone.utc), False),
    # 31 March 2030 is 23 hours long: it ends at 22:00 UTC.
    (date(2030, 3, 31), datetime(2030, 3, 31, 21, 59, tzinfo=timezone.utc), True),
    (date(2030, 3, 31), datetime(2030, 3, 31, 23, 59, tzinfo=timezone.utc), True),
    (date(2030, 3, 31), datetime(2030, 4, 1, 0, 0, tzinfo=timezone.utc), False),
])
def test_the_desk_s_deadline_on_days_the_clocks_change(app, world, deadline, instant, allowed):
    form = at_the_desk(world)
    ends = rules.deadline_end_utc(deadline, AMSTERDAM)
    set_clock(app, form["id"], deadline, ends - timedelta(minutes=20), instant - timedelta(hours=3))
    with app.app_context():
        session = database.session()
        officer_id = session.scalar(select(User.id).where(User.username == "officer"))
        officer = Principal("user", str(officer_id), "officer")
        row = session.get(Form, form["id"])
        desk = decisions.DeskRules.from_config(app.config)
        if allowed:
            decided = decisions.decide(session, officer, row, "validated", None, None, None, instant, desk=desk)
            assert (decided.status, decided.validated_at) == ("validated", instant)
        else:
            with pytest.raises(Problem) as refused:
                decisions.decide(session, officer, row, "validated", None, None, None, instant, desk=desk)
            assert (refused.value.status, refused.value.code) == (422, "deadline_passed")
        session.rollback()


# --- checks left waiting expire ------------------------------------------------------

def expire(runner) -> str:
    result = runner.invoke(args=["expire-forms"])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_check_still_waiting_after_the_grace_period_expires_with_its_form(app, world, runner):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hook = world.post("refunds", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["form.expired"]})
    assert hook.status_code == 201, hook.get_json()
    form = at_the_desk(world)
    waiting = at_the_desk(world)  # its deadline is months away
    deadline, ends = ended_deadline()
    set_clock(app, form["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))

    assert "1 form(s) expired" in expire(runner)
    assert "0 form(s) expired" in expire(runner)

    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "expired"
    queue = world.get("officer", "/api/v1/checks?exit_point=AMS").get_json()["items"]
    assert [c["form_id"] for c in queue] == [waiting["id"]]
    [closed] = world.get("officer", "/api/v1/checks?status=expired").get_json()["items"]
    assert (closed["form_id"], closed["status"], closed["outcome"], closed["officer_id"]) == (
        form["id"], "expired", "expired", None)
    last = world.get("officer", f"/api/v1/forms/{form['id']}/events").get_json()["items"][-1]
    assert (last["type"], last["actor"], last["exit_point"]) == ("form.expired", "system", "AMS")
    [delivery] = world.get("refunds", f"/api/v1/webhooks/{hook.get_json()['id']}/deliveries").get_json()["items"]
    assert (delivery["event_type"], delivery["payload"]["data"]["form_id"],
            delivery["payload"]["data"]["status"]) == ("form.expired", form["id"], "expired")
    # Nothing more happens at the desk or the kiosk.
    assert decide(world, form["id"], {"outcome": "rejected", "reason_code": "deadline_passed"}).status_code == 409
    scanned = world.scan("kiosk", form["qr_payload"]).get_json()
    assert (scanned["verdict"], scanned["reason_code"]) == ("refused", "deadline_passed")


def test_a_check_waits_for_the_end_of_the_grace_period_before_it_expires(app, world, runner):
    form = at_the_desk(world)
    deadline, ends = ended_deadline()
    set_clock(app, form["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))
    # A grace period long enough to reach an hour from now.
    app.config["DESK_DECISION_GRACE_MINUTES"] = int((now() - ends).total_seconds() // 60) + 60

    assert "0 form(s) expired" in expire(runner)
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "check_required"


def test_a_decision_made_offline_in_time_is_recorded_though_the_check_expired_since(app, world, runner):
    form = at_the_desk(world)
    deadline, ends = ended_deadline()
    set_clock(app, form["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))
    assert "1 form(s) expired" in expire(runner)

    # Decided on a handheld without network at 23:50 on the deadline day.
    r = validate_at(world, form["id"], ends - timedelta(minutes=10))

    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "validated"
    [check] = world.get("officer", "/api/v1/checks?status=decided").get_json()["items"]
    assert (check["form_id"], check["outcome"]) == (form["id"], "validated")
    # A decision dated after the check expired is refused.
    other = at_the_desk(world)
    set_clock(app, other["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))
    assert "1 form(s) expired" in expire(runner)
    problem_of(decide(world, other["id"], {"outcome": "rejected", "reason_code": "goods_used",
                                           "decided_at": (ends + timedelta(hours=3)).isoformat()}),
               409, "already_decided")


def test_an_offline_scan_made_in_time_does_not_revive_a_form_whose_check_expired(app, world, runner):
    """Issued forms an offline kiosk scanned before their deadline are
    revived when the scan arrives; a form customs wanted to check, whose
    check expired at the desk, is not: nobody saw its goods."""
    form = at_the_desk(world)
    deadline, ends = ended_deadline()
    set_clock(app, form["id"], deadline, ends - timedelta(minutes=30), ends - timedelta(hours=2))
    assert "1 form(s) expired" in expire(runner)

    r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"],
                                              "scanned_at": (ends - timedelta(minutes=5)).isoformat()})

    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["verdict"], r.get_json()["reason_code"]) == ("refused", "deadline_passed")
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "expired"
