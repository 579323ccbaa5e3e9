"""Officers decide only where they are on duty: an officer signs on at an
exit point's desk (POST /api/v1/duty) and may decide the checks waiting
there, and no others; the decision records the duty it was made on. An
administrator is not an officer and never decides."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from api import database
from api.models import Check, Duty, Event
from tests.builders import item, traveller

PROBLEM = "application/problem+json"
WATCH = item(60500, category="watches")


def at_the_desk(world, kiosk="kiosk") -> dict:
    form = world.issue("shop", WATCH, traveller=traveller(passport_number=f"T{world.invoices + 1:07d}"))
    assert world.scan(kiosk, form["qr_payload"]).get_json()["verdict"] == "check_required"
    return form


def decide(world, form_id, who="officer", **extra):
    return world.post(who, f"/api/v1/forms/{form_id}/decision", {"outcome": "validated", **extra})


def problem_of(r, status, code) -> dict:
    assert r.status_code == status, r.get_json()
    assert r.mimetype == PROBLEM
    assert r.get_json()["code"] == code
    return r.get_json()


def status_of(world, form_id) -> str:
    return world.get("shop", f"/api/v1/forms/{form_id}").get_json()["status"]


def sign_off(world, who):
    r = world.client.delete("/api/v1/duty", headers=world.auth(who))
    assert r.status_code == 204, r.get_data(as_text=True)


def test_an_officer_on_duty_at_schiphol_cannot_decide_a_check_waiting_in_rotterdam(world):
    form = at_the_desk(world, kiosk="rtm-kiosk")

    problem = problem_of(decide(world, form["id"]), 403, "not_on_duty_here")

    assert problem["detail"] == (f"The check of form {form['id']} is at the desk of RTM (Rotterdam); "
                                 "only an officer on duty there can decide it.")
    assert status_of(world, form["id"]) == "check_required"
    queue = world.get("officer", "/api/v1/checks?exit_point=RTM").get_json()["items"]
    assert [c["form_id"] for c in queue] == [form["id"]]
    trail = world.get("officer", f"/api/v1/forms/{form['id']}/events").get_json()["items"]
    assert "form.validated" not in [e["type"] for e in trail]


def test_signing_on_in_rotterdam_lets_the_officer_decide_there_and_no_longer_at_schiphol(world):
    in_rotterdam = at_the_desk(world, kiosk="rtm-kiosk")
    at_schiphol = at_the_desk(world)

    duty = world.sign_on("officer", "RTM")

    assert (duty["exit_point"]["code"], duty["exit_point"]["name"]) == ("RTM", "Rotterdam")
    assert world.get("officer", "/api/v1/duty").get_json() == duty
    r = decide(world, in_rotterdam["id"])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["exit_point"] == "RTM"
    problem_of(decide(world, at_schiphol["id"]), 403, "not_on_duty_here")
    assert decide(world, at_schiphol["id"], who="officer2").status_code == 200


def test_the_decision_records_the_duty_and_the_exit_point_it_was_made_at(app, world):
    form = at_the_desk(world)
    duty = world.get("officer", "/api/v1/duty").get_json()

    assert decide(world, form["id"]).status_code == 200

    last = world.get("officer", f"/api/v1/forms/{form['id']}/events").get_json()["items"][-1]
    assert (last["type"], last["exit_point"], last["data"]["duty"]) == ("form.validated", "AMS", duty["id"])
    [check] = world.get("officer", "/api/v1/checks?status=decided").get_json()["items"]
    assert check["exit_point"] == "AMS"
    with app.app_context():
        session = database.session()
        assert session.scalar(select(Check.duty_id).where(Check.form_id == form["id"])) == duty["id"]
        signed_on = session.scalars(select(Event).where(Event.type == "officer.signed_on")
                                    .order_by(Event.id)).all()
        assert [(e.exit_point, e.data["duty"]) for e in signed_on][0] == ("AMS", duty["id"])


def test_an_officer_who_signed_off_decides_nothing(world):
    form = at_the_desk(world)
    sign_off(world, "officer")

    problem_of(decide(world, form["id"]), 403, "not_on_duty_here")
    problem_of(world.get("officer", "/api/v1/duty"), 404, "not_on_duty")
    assert status_of(world, form["id"]) == "check_required"


def test_a_duty_ends_with_the_shift(app, world):
    form = at_the_desk(world)
    with app.app_context():
        session = database.session()
        session.execute(update(Duty).values(started_at=datetime.now(timezone.utc) - timedelta(hours=12)))
        session.commit()

    problem_of(decide(world, form["id"]), 403, "not_on_duty_here")
    problem_of(world.get("officer", "/api/v1/duty"), 404, "not_on_duty")
    world.sign_on("officer", "AMS")
    assert decide(world, form["id"]).status_code == 200


def test_a_decision_made_offline_counts_on_the_duty_the_officer_was_on_then(app, world):
    at_schiphol = at_the_desk(world)
    other = at_the_desk(world)
    made = datetime.now(timezone.utc) - timedelta(minutes=30)
    with app.app_context():
        session = database.session()
        session.execute(update(Duty).values(started_at=made - timedelta(hours=1)))
        session.execute(update(Check).values(opened_at=made - timedelta(minutes=10)))
        session.commit()
    # Half an hour ago at Schiphol the officer decided without network;
    # twenty minutes ago they went on duty in Rotterdam, and now the
    # handheld reaches the API.
    world.sign_on("officer", "RTM")
    moved = datetime.now(timezone.utc) - timedelta(minutes=20)
    with app.app_context():
        session = database.session()
        session.execute(update(Duty).where(Duty.ended_at.is_not(None)).values(ended_at=moved))
        session.execute(update(Duty).where(Duty.ended_at.is_(None)).values(started_at=moved))
        session.commit()

    r = decide(world, at_schiphol["id"], decided_at=made.isoformat())

    assert r.status_code == 200, r.get_json()
    assert r.get_json()["exit_point"] == "AMS"
    # Dated ten minutes ago, after they left Schiphol, it is refused.
    later = (datetime.now(timezone.utc) - timedelta(minutes=10)).isoformat()
    problem_of(decide(world, other["id"], decided_at=later), 403, "not_on_duty_here")


@pytest.mark.parametrize("who", ["root", "shop", "refunds", "kiosk"])
def test_only_officers_go_on_duty(world, who):
    problem_of(world.post(who, "/api/v1/duty", {"exit_point": "AMS"}), 403, "forbidden")
    problem_of(world.get(who, "/api/v1/duty"), 403, "forbidden")


def test_an_administrator_is_not_an_officer_and_cannot_decide(world):
    form = at_the_desk(world)
    problem_of(decide(world, form["id"], who="root"), 403, "forbidden")
    assert status_of(world, form["id"]) == "check_required"


def test_signing_on_at_an_exit_point_that_does_not_exist_is_refused(world):
    problem = problem_of(world.post("officer", "/api/v1/duty", {"exit_point": "XXX"}), 422, "invalid_request")
    assert problem["errors"] == {"exit_point": ["No exit point with this code."]}
    # The duty the officer was on is untouched.
    assert world.get("officer", "/api/v1/duty").get_json()["exit_point"]["code"] == "AMS"


def test_signing_on_and_off_is_in_the_audit_trail(app, world):
    world.sign_on("officer", "RTM")
    sign_off(world, "officer")
    with app.app_context():
        rows = database.session().execute(
            select(Event.type, Event.exit_point).where(Event.actor == f"user:{_user_id(world, 'officer')}")
            .order_by(Event.id)).all()
    assert [tuple(r) for r in rows] == [
        ("officer.signed_on", "AMS"), ("officer.signed_off", "AMS"),
        ("officer.signed_on", "RTM"), ("officer.signed_off", "RTM"),
    ]


def _user_id(world, username) -> str:
    import jwt

    return jwt.decode(world.tokens[username], options={"verify_signature": False})["sub"].split(":")[1]
