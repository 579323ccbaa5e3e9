"""The desk's main path, through the real screens against the live API:
log in, see the traveller waiting, scan the form's QR code with the
camera, mark a line absent, send a partial validation, and find it in the
form's audit trail, in the retailer's webhook outbox and in the officer's
history."""
from __future__ import annotations

from shared import scanning


def test_officer_scans_the_qr_marks_the_coat_absent_and_partially_validates(app, desk_world, handheld, tmp_path):
    world = desk_world
    form = world.waiting_form()
    # The shop wants to hear of partial validations (the receiver need not
    # exist: the event is in the outbox once the decision commits).
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    r = world.post("shop", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/taxfree",
                                                "events": ["form.partially_validated"]})
    assert r.status_code == 201, r.get_json()
    webhook_id = r.get_json()["id"]
    png = tmp_path / "form-qr.png"
    r = world.get("officer", f"/api/v1/forms/{form['id']}/qr.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    png.write_bytes(r.data)

    # The "camera" shows the printed QR code: the PNG the API serves.
    device = handheld(frames=lambda: scanning.ImageFiles([png]))
    device.log_in()

    # The queue: one traveller, why they are here, how long they have waited.
    queue = device.screen("queue")
    cards = device.wait(lambda: device.find_all("DeskTravellerCard", queue), "a traveller in the queue")
    assert len(cards) == 1
    card = cards[0]
    assert card.name == "Mei Chen"
    assert card.forms == "1 form, 2 lines"
    assert card.total == "EUR 1,499.00"
    assert "Watched goods" in card.rules
    assert card.waiting in ("just now", "1 min")
    assert queue.summary.startswith("1 waiting · ")

    # Find: scan the QR code.
    device.tap(device.button("Find"))
    assert device.current == "find"
    device.tap(device.button("Scan QR code"))
    device.wait(lambda: device.current == "check", "the check screen after the scan")
    check = device.screen("check")
    assert check.name_text == "Mei Chen"
    assert "E12345678" in check.passport_text
    assert "Born: 14 Mar 1988" in check.details_text
    [form_card] = check.cards()
    assert form_card.form_id == form["id"]
    assert "Watched goods" in form_card.rules
    assert form_card.decidable
    watch_row, coat_row = form_card.line_rows()
    assert "serial SN-10077" in watch_row.details and "Watches" in watch_row.details

    # The coat is not in the luggage.
    assert device.button("Validate lines shown", form_card).disabled
    device.tap(device.find_all("DeskPresenceToggle", coat_row)[0])
    assert coat_row.present is False
    assert form_card.present_count == 1
    assert device.button("Validate all", form_card).disabled
    partial = device.button("Validate lines shown (1 of 2)", form_card)
    assert not partial.disabled
    device.tap(partial)

    # The confirmation shows what will be sent.
    assert device.current == "confirm"
    confirm = device.screen("confirm")
    assert confirm.outcome_text == "Partially validated"
    assert "outcome: partially_validated" in confirm.sent_text
    assert "lines: 1 present, 2 NOT present" in confirm.sent_text
    assert confirm.amount_text == "Validated: EUR 1,250.00 of EUR 1,499.00"
    device.tap(device.button("Send decision"))
    device.wait(lambda: device.current == "queue" and "recorded" in device.app.notice, "the decision recorded")
    assert device.app.waiting_count == 0

    # The audit trail has the decision, line by line, by this officer.
    decided = world.decisions(form["id"])
    assert [e["type"] for e in decided] == ["form.partially_validated"]
    assert decided[0]["data"]["lines"] == [{"line": 1, "present": True}, {"line": 2, "present": False}]
    assert decided[0]["actor"] == device.app.desk.officer.actor
    assert decided[0]["exit_point"] == "AMS"
    assert world.form(form["id"])["status"] == "partially_validated"

    # The retailer is told: one webhook event, the coat not validated.
    r = world.get("shop", f"/api/v1/webhooks/{webhook_id}/deliveries")
    [delivery] = r.get_json()["items"]
    assert delivery["event_type"] == "form.partially_validated"
    event = delivery["payload"]
    assert event["type"] == "form.partially_validated" and event["data"]["form_id"] == form["id"]
    assert [(l["line"], l["validated"]) for l in event["data"]["lines"]] == [(1, True), (2, False)]
    assert event["data"]["validated_total_cents"] == 125000

    # The history: today's decision, found by search.
    device.tap(device.button("History"))
    history = device.screen("history")
    device.wait(lambda: history.ids.list.data, "the history")
    [entry] = history.ids.list.data
    assert entry["form_id"] == form["id"] and entry["outcome"] == "Partially validated"
    assert entry["name"] == "Mei Chen"
    device.type(history.ids.search, "chen partial")
    assert len(history.ids.list.data) == 1
    history.ids.search.text = "rejected"
    device.pump(2)
    assert history.ids.list.data == []
