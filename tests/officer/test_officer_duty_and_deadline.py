"""The handheld and the desk's rules: choosing the desk signs the officer on
there (server-side), logging out signs them off; a decision made without
network counts at the moment it was made, so one made before the export
deadline ended is recorded when the network comes back, and one made too
late is refused and shown to the officer, not dropped."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from api import database
from api.models import Check, Duty, Form
from officer_app import wording
from shared import rules

AMSTERDAM = "Europe/Amsterdam"
JOHN = dict(first_name="John", last_name="Smith", passport_number="568432190", passport_country="US",
            nationality="US", residence_country="US", date_of_birth="1979-11-02")


def card_of(device, name):
    return device.wait(lambda: device.find_all("DeskTravellerCard", device.screen("queue"), name=name),
                       f"{name} in the queue")[0]


def duty_of(world, who="officer"):
    r = world.get(who, "/api/v1/duty")
    return r.get_json()["exit_point"]["code"] if r.status_code == 200 else None


def test_choosing_the_desk_signs_the_officer_on_there_and_logging_out_signs_them_off(
        desk_world, desk_server, handheld):
    world = desk_world
    world.world.client.delete("/api/v1/duty", headers=world.auth("officer"))
    assert duty_of(world) is None
    device = handheld()

    device.log_in(exit_point="RTM")

    assert duty_of(world) == "RTM"
    rotterdam = world.waiting_form()  # sent to Schiphol's desk: not this officer's
    refused = world.post("officer", f"/api/v1/forms/{rotterdam['id']}/decision", {"outcome": "validated"})
    assert refused.status_code == 403
    # The handheld locks when put down; the officer logs out from there.
    device.app.lock()
    device.wait(lambda: device.current == "lock", "the lock screen")
    device.tap(device.button("Log out"))
    device.wait(lambda: device.current == "login", "the login screen")
    device.settle()
    assert duty_of(world) is None


def decided_offline(device, desk_server, name: str, outcome_button: str = "Validate all") -> None:
    """Open the traveller's forms, lose the network, decide: saved on the handheld."""
    waiting = device.app.waiting_count
    device.tap(card_of(device, name))
    device.wait(lambda: device.current == "check", f"{name}'s check")
    desk_server.stop()
    device.tap(device.button(outcome_button))
    device.tap(device.button("Send decision"))
    device.wait(lambda: device.app.waiting_count == waiting + 1, "the decision saved")


def backdate(queue_path, form_id: str, when: datetime) -> None:
    """As if the decision on ``form_id`` had been made at ``when``."""
    with sqlite3.connect(queue_path) as db:
        body, = db.execute("SELECT body FROM pending_decisions WHERE form_id = ?", (form_id,)).fetchone()
        stamp = when.isoformat(timespec="seconds")
        db.execute("UPDATE pending_decisions SET body = ?, queued_at = ? WHERE form_id = ?",
                   (json.dumps({**json.loads(body), "decided_at": stamp}, sort_keys=True), stamp, form_id))


def test_decisions_made_offline_are_judged_at_the_moment_they_were_made(
        app, desk_world, desk_server, handheld, tmp_path):
    world = desk_world
    mei = world.waiting_form()
    john = world.waiting_form(**JOHN)
    device = handheld(data_dir=tmp_path / "handheld")
    device.log_in()
    card_of(device, "John Smith")

    decided_offline(device, desk_server, "Mei Chen")
    device.tap(card_of(device, "John Smith"))
    device.wait(lambda: device.current == "check", "John's check")
    device.tap(device.button("Validate all"))
    device.tap(device.button("Send decision"))
    device.wait(lambda: device.app.waiting_count == 2, "both decisions saved")

    # Both forms' deadlines ended three days ago at midnight in Amsterdam;
    # the travellers came to the desk half an hour before. Mei's decision
    # was made ten minutes before midnight, John's three hours after it
    # (beyond the two hours of grace).
    deadline = rules.local_today(datetime.now(timezone.utc), AMSTERDAM) - timedelta(days=3)
    ends = rules.deadline_end_utc(deadline, AMSTERDAM)
    with app.app_context():
        session = database.session()
        session.execute(update(Form).where(Form.id.in_([mei["id"], john["id"]])).values(export_deadline=deadline))
        session.execute(update(Check).values(opened_at=ends - timedelta(minutes=30)))
        session.execute(update(Duty).values(started_at=ends - timedelta(hours=2)))
        session.commit()
    queue_path = tmp_path / "handheld" / "decisions.sqlite3"
    backdate(queue_path, mei["id"], ends - timedelta(minutes=10))
    backdate(queue_path, john["id"], ends + timedelta(hours=3))

    desk_server.start()
    device.app.sync_now()
    device.wait(lambda: device.app.waiting_count == 0 and device.app.conflict_count == 1, "the sync")

    [mei_decision] = world.decisions(mei["id"])
    assert mei_decision["type"] == "form.validated"
    assert mei_decision["data"]["decided_at"] == (ends - timedelta(minutes=10)).isoformat()
    assert world.form(mei["id"])["status"] == "validated"
    assert world.decisions(john["id"]) == []
    assert world.form(john["id"])["status"] == "check_required"

    # John's refusal is shown, with the reason, until the officer has seen it.
    device.tap(device.button("1 decision not recorded"))
    assert device.current == "conflict"
    conflict = device.screen("conflict")
    assert conflict.heading == f"Form {john['id']}: decision refused"
    assert "its export can no longer be validated, only rejected" in conflict.explanation
    assert wording.day(deadline) in conflict.explanation  # the deadline the API judged by
    device.tap(device.button("I have seen this"))
    device.wait(lambda: device.app.conflict_count == 0, "the refusal acknowledged")
