"""Decisions made while the API is off the network: kept on the handheld,
through a restart of the app, sent once when the network is back; a form
another officer decided meanwhile shows both decisions."""
from __future__ import annotations

from shared.officer_client import OfficerClient

JOHN = dict(first_name="John", last_name="Smith", passport_number="568432190", passport_country="US",
            nationality="US", residence_country="US", date_of_birth="1979-11-02")


def card_of(device, name):
    cards = device.wait(lambda: device.find_all("DeskTravellerCard", device.screen("queue"), name=name),
                        f"{name} in the queue")
    return cards[0]


def test_offline_decisions_survive_a_restart_sync_once_and_a_conflict_shows_both(
        desk_world, desk_server, handheld, figures):
    world = desk_world
    mei = world.waiting_form()
    john = world.waiting_form(**JOHN)
    device = handheld()
    device.log_in()
    card_of(device, "John Smith")

    # Mei's forms are open on the handheld when the network goes.
    device.tap(card_of(device, "Mei Chen"))
    device.wait(lambda: device.current == "check", "Mei's check")
    desk_server.stop()
    device.tap(device.button("Validate all"))
    device.tap(device.button("Send decision"))
    device.wait(lambda: device.app.waiting_count == 1, "the decision saved")
    assert "saved on this handheld" in device.app.notice
    assert device.current == "queue"
    [status] = device.find_all("DeskStatus", device.screen("queue"))
    device.wait(lambda: status.text == "Offline · 1 to send", "the offline badge")

    # John was in the queue before the network went: his forms were fetched
    # ahead, so he can still be checked.
    device.tap(card_of(device, "John Smith"))
    device.wait(lambda: device.current == "check", "John's check")
    assert "Offline: details as loaded at" in device.screen("check").warnings_text
    device.tap(device.button("Reject"))
    confirm = device.screen("confirm")
    assert device.button("Send decision").disabled
    assert confirm.problems_text == "Choose the reason for the rejection."
    device.tap(device.button("Goods used", confirm.ids.reasons))
    assert "reason: goods_used" in confirm.sent_text
    device.tap(device.button("Send decision"))
    device.wait(lambda: device.app.waiting_count == 2, "the second decision saved")

    # The app is closed with both decisions waiting; nothing reached the API.
    device.stop()
    desk_server.start()
    assert world.decisions(mei["id"]) == [] and world.decisions(john["id"]) == []
    # Meanwhile another officer validates John's form at another handheld.
    r = world.post("officer2", f"/api/v1/forms/{john['id']}/decision",
                   {"outcome": "validated", "lines": [{"line": 1, "present": True}, {"line": 2, "present": True}]})
    assert r.status_code == 200, r.get_json()

    # The app starts again: the decisions are still there, and are sent at login.
    device = handheld()
    device.wait(lambda: "2 decisions saved on this handheld" in device.screen("login").waiting_text,
                "the login screen's word on saved decisions")
    device.log_in()
    device.wait(lambda: device.app.waiting_count == 0 and device.app.conflict_count == 1, "the sync")
    officer = device.app.desk.officer
    [mei_decision] = world.decisions(mei["id"])
    assert mei_decision["type"] == "form.validated" and mei_decision["actor"] == officer.actor
    [john_decision] = world.decisions(john["id"])
    assert john_decision["actor"] != officer.actor

    # The officer is told, and sees both decisions.
    device.tap(device.button("1 decision not recorded"))
    assert device.current == "conflict"
    conflict = device.screen("conflict")
    device.wait(lambda: conflict.recorded_by.startswith("Recorded: by officer "), "the other decision")
    assert conflict.heading == f"Form {john['id']} was already decided"
    number = john_decision["actor"].removeprefix("user:")
    assert conflict.recorded_by.startswith(f"Recorded: by officer no. {number} at ")
    assert conflict.recorded == "Validated\nall lines present"
    assert conflict.yours == "Rejected\nreason: Goods used"
    device.tap(device.button("I have seen this"))
    assert device.current == "queue" and device.app.conflict_count == 0

    # Sent once: another sync has nothing left to send.
    assert device.app.desk.sync().sent == []
    assert len(world.decisions(mei["id"])) == 1

    # The history tells the two apart.
    device.tap(device.button("History"))
    history = device.screen("history")
    rows = device.wait(lambda: history.ids.list.data if len(history.ids.list.data) == 2 else None, "history")
    by_form = {row["form_id"]: row for row in rows}
    assert by_form[mei["id"]]["outcome"] == "Validated" and by_form[mei["id"]]["state_text"] == "AMS"
    assert by_form[john["id"]]["state_text"] == "NOT recorded"
    figures(queued=2, restarts=1, recorded=1, refused_as_conflict=1, lost=0,
            duplicated=len(world.decisions(mei["id"])) - 1)


def test_a_resent_decision_is_replayed_not_recorded_twice(desk_world, desk_server, tmp_path):
    """The API got the decision but the answer was lost: the queue resends
    the same key and body, and the form still has one decision."""
    from shared.decision_queue import DecisionQueue

    world = desk_world
    form = world.waiting_form()
    client = OfficerClient(desk_server.url)
    client.login("officer", "correct-horse-battery")
    body = {"outcome": "validated", "lines": [{"line": 1, "present": True}, {"line": 2, "present": True}]}
    with DecisionQueue(tmp_path / "decisions.sqlite3") as queue:
        item = queue.add("officer", form["id"], body)
        # Exactly what the queue sends (the decision dated when it was made).
        assert item.body == {**body, "decided_at": item.queued_at}
        first = client.decide(form["id"], item.body, item.idempotency_key)  # answer "lost"
        assert not first.replayed
        report = queue.sync(client, "officer")
    [(sent, answer)] = report.sent
    assert sent.idempotency_key == item.idempotency_key and answer.replayed
    assert answer.form["status"] == "validated"
    assert [e["type"] for e in world.decisions(form["id"])] == ["form.validated"]
