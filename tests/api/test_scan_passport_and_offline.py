"""A passport pulls up all of a traveller's open forms; scans a kiosk queued
while offline arrive once and are judged at the moment they were made."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from api import database
from api.models import Device, Form, Scan

WATCH = {"description": "Watch", "quantity": 1, "unit_price_cents": 30000, "vat_rate": 21, "category": "watches"}
COAT = {"description": "Coat", "quantity": 1, "unit_price_cents": 12100, "vat_rate": 21, "category": "clothing"}


def events(world, form_id):
    return [e for e in world.get("shop", f"/api/v1/forms/{form_id}/events").get_json()["items"]]


def test_a_passport_read_at_the_kiosk_gives_a_verdict_for_each_open_form(world):
    coat = world.issue("shop", COAT)
    watch = world.issue("shop", WATCH)
    other = world.issue("shop", COAT, traveller={"first_name": "Ann", "last_name": "Lee",
                                                 "passport_number": "X9988776", "passport_country": "US",
                                                 "nationality": "US", "residence_country": "US",
                                                 "date_of_birth": "1970-01-01"})
    cancelled = world.issue("shop", COAT)
    world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel")
    r = world.post("kiosk", "/api/v1/scans/passport", {"passport_number": "E12345678", "passport_country": "CN"})
    assert r.status_code == 200
    verdicts = {v["form_id"]: v["verdict"] for v in r.get_json()["items"]}
    assert verdicts == {coat["id"]: "validated", watch["id"]: "check_required"}
    assert other["id"] not in verdicts
    # Read again: nothing is open any more but the form at the desk.
    again = world.post("kiosk", "/api/v1/scans/passport", {"passport_number": "E12345678", "passport_country": "CN"})
    assert [v["form_id"] for v in again.get_json()["items"]] == [watch["id"]]


def test_a_passport_with_no_open_forms_gets_an_empty_list(world):
    r = world.post("kiosk", "/api/v1/scans/passport", {"passport_number": "Z0000000", "passport_country": "JP"})
    assert r.status_code == 200 and r.get_json() == {"items": []}


def test_only_devices_read_passports(world):
    r = world.post("officer", "/api/v1/scans/passport", {"passport_number": "E12345678", "passport_country": "CN"})
    assert r.status_code == 403


def test_a_queued_scan_resent_with_its_idempotency_key_is_counted_once(world):
    form = world.issue("shop", COAT)
    headers = {"Idempotency-Key": "kiosk-1:scan-0001"}
    first = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"]}, headers=headers)
    again = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"]}, headers=headers)
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [e["type"] for e in events(world, form["id"])].count("form.scanned") == 1


def _backdate(app, world, *form_ids, days=5, kiosk_days=5):
    """The forms were issued ``days`` ago, and the kiosk paired ``kiosk_days`` ago."""
    with app.app_context():
        session = database.session()
        for form_id in form_ids:
            session.get(Form, form_id).created_at -= timedelta(days=days)
        session.get(Device, world.ids["kiosk"]).created_at -= timedelta(days=kiosk_days)
        session.commit()


def _deadline(app, form_id, days_ago):
    with app.app_context():
        session = database.session()
        session.get(Form, form_id).export_deadline = datetime.now(timezone.utc).date() - timedelta(days=days_ago)
        session.commit()


def _ago(**delta) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat()


def replay(world, payload, scanned_at, key=None, device="kiosk"):
    headers = {"Idempotency-Key": key} if key else {}
    return world.post(device, "/api/v1/scans", {"qr_payload": payload, "scanned_at": scanned_at, "queued": True},
                      headers=headers)


def test_a_scan_made_offline_before_the_deadline_counts_even_if_it_arrives_after(world, app):
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"])
    # The deadline was yesterday; the kiosk scanned two days ago while offline.
    _deadline(app, form["id"], 1)
    scanned_at = _ago(days=2)
    r = replay(world, form["qr_payload"], scanned_at)
    assert r.get_json()["verdict"] == "validated"
    scanned = [e for e in events(world, form["id"]) if e["type"] == "form.scanned"][0]
    assert scanned["data"]["scanned_at"] == scanned_at and scanned["data"]["queued"] is True
    # The event's own time is when the API received it.
    assert scanned["at"] > scanned_at
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["validated_at"].startswith(scanned_at[:16])


def test_a_live_scan_is_dated_when_it_arrives_whatever_it_says(world, app):
    # The old hole: any device could send scanned_at on any scan and have an
    # expired form validated as if scanned before its deadline.
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"])
    _deadline(app, form["id"], 1)
    r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"], "scanned_at": _ago(days=2)})
    assert r.status_code == 200 and r.get_json()["reason_code"] == "deadline_passed"
    scanned = [e for e in events(world, form["id"]) if e["type"] == "form.scanned"][0]
    assert "scanned_at" not in scanned["data"]


def test_a_queued_scan_cannot_be_dated_before_the_form_was_issued(world, app):
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"], days=1)
    r = replay(world, form["qr_payload"], _ago(days=2))
    assert (r.status_code, r.get_json()["code"]) == (422, "scanned_before_issue")
    assert list(r.get_json()["errors"]) == ["scanned_at"]
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "issued"


def test_a_queued_scan_cannot_be_dated_before_the_devices_last_live_scan(world, app):
    form, earlier = world.issue("shop", COAT), world.issue("shop", COAT)
    _backdate(app, world, form["id"], earlier["id"])
    _deadline(app, form["id"], 1)
    # The kiosk was online an hour ago: it scanned another form live.
    assert world.post("kiosk", "/api/v1/scans", {"qr_payload": earlier["qr_payload"]}).status_code == 200
    r = replay(world, form["qr_payload"], _ago(days=2))
    assert (r.status_code, r.get_json()["code"]) == (422, "scanned_before_last_contact")
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "issued"
    # Another kiosk's live scans say nothing about this one.
    other = world.issue("shop", COAT)
    _backdate(app, world, other["id"])
    assert replay(world, other["qr_payload"], _ago(hours=2), device="rtm-kiosk").status_code == 422
    # (rtm-kiosk was paired just now: before that it could not scan at all.)


def test_a_queued_scan_cannot_be_dated_before_the_device_was_paired(world, app):
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"], days=3)
    with app.app_context():
        session = database.session()
        session.get(Device, world.ids["kiosk"]).created_at = datetime.now(timezone.utc) - timedelta(days=1)
        session.commit()
    r = replay(world, form["qr_payload"], _ago(days=2))
    assert (r.status_code, r.get_json()["code"]) == (422, "scanned_before_last_contact")


def test_a_queue_drained_in_order_is_accepted_whole_and_then_closes(world, app):
    forms_ = [world.issue("shop", COAT) for _ in range(4)]
    _backdate(app, world, *[f["id"] for f in forms_], days=5)
    # Online four days ago, then offline: three scans queued, sent in order.
    with app.app_context():
        session = database.session()
        session.execute(Scan.__table__.insert().values(
            device_id=world.ids["kiosk"], exit_point_id=session.get(Device, world.ids["kiosk"]).exit_point_id,
            verdict="refused", reason_code="malformed_token", created_at=datetime.now(timezone.utc) - timedelta(days=4),
            received_at=datetime.now(timezone.utc) - timedelta(days=4), queued=False))
        session.commit()
    queue = [(forms_[0], _ago(days=3)), (forms_[1], _ago(days=1)), (forms_[2], _ago(hours=1))]
    answers = [replay(world, f["qr_payload"], at, key=f"kiosk:scan-{n}") for n, (f, at) in enumerate(queue)]
    assert [(a.status_code, a.get_json()["verdict"]) for a in answers] == [(200, "validated")] * 3
    # Back online: a live scan; after it, nothing may claim an earlier time.
    assert world.post("kiosk", "/api/v1/scans", {"qr_payload": forms_[3]["qr_payload"]}).status_code == 200
    late = world.issue("shop", COAT)
    _backdate(app, world, late["id"])
    assert replay(world, late["qr_payload"], _ago(hours=2)).get_json()["code"] == "scanned_before_last_contact"


def test_the_scan_row_keeps_when_it_was_made_and_when_it_arrived(world, app):
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"])
    scanned_at = datetime.now(timezone.utc) - timedelta(days=2)
    replay(world, form["qr_payload"], scanned_at.isoformat())
    live = world.issue("shop", COAT)
    world.post("kiosk", "/api/v1/scans", {"qr_payload": live["qr_payload"]})
    with app.app_context():
        rows = {r.form_id: r for r in database.session().scalars(select(Scan))}
    queued, direct = rows[form["id"]], rows[live["id"]]
    assert queued.queued and abs(queued.created_at - scanned_at) < timedelta(seconds=1)
    assert queued.received_at - queued.created_at > timedelta(days=1)
    assert not direct.queued and direct.created_at == direct.received_at


def test_a_queued_resend_of_a_live_attempt_that_arrived_gets_its_answer(world, app):
    # The kiosk's live attempt reached the API but the answer was lost; it
    # queued the scan under the same key and sends it later, dated.
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"])
    key = {"Idempotency-Key": "kiosk:scan-lost-answer"}
    first = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"]}, headers=key)
    again = replay(world, form["qr_payload"], _ago(seconds=30), key="kiosk:scan-lost-answer")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert [e["type"] for e in events(world, form["id"])].count("form.scanned") == 1


def test_a_queued_scan_must_say_when_it_was_made(world):
    form = world.issue("shop", COAT)
    r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"], "queued": True})
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["scanned_at"]


def test_a_queued_passport_scan_judges_only_the_forms_that_existed_then(world, app):
    old = world.issue("shop", COAT)
    _backdate(app, world, old["id"])
    new = world.issue("shop", COAT)  # issued after the passport was read offline
    r = world.post("kiosk", "/api/v1/scans/passport", {"passport_number": "E12345678", "passport_country": "CN",
                                                       "scanned_at": _ago(days=1), "queued": True})
    assert [v["form_id"] for v in r.get_json()["items"]] == [old["id"]]
    assert world.get("shop", f"/api/v1/forms/{new['id']}").get_json()["status"] == "issued"


def test_a_scan_made_today_after_the_deadline_is_refused(world, app):
    form = world.issue("shop", COAT)
    _deadline(app, form["id"], 2)
    r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"]})
    assert r.get_json()["reason_code"] == "deadline_passed"


def test_scans_dated_in_the_future_or_weeks_ago_are_refused(world, app):
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"], days=40)
    for when in (datetime.now(timezone.utc) + timedelta(hours=1), datetime.now(timezone.utc) - timedelta(days=30)):
        r = replay(world, form["qr_payload"], when.isoformat())
        assert r.status_code == 422 and list(r.get_json()["errors"]) == ["scanned_at"]


def test_an_offline_scan_made_before_the_deadline_validates_a_form_expired_since(world, app, runner):
    form = world.issue("shop", COAT)
    _backdate(app, world, form["id"])
    _deadline(app, form["id"], 1)
    assert "1 form(s) expired" in runner.invoke(args=["expire-forms"]).output
    late = replay(world, form["qr_payload"], _ago(days=2))
    assert late.get_json()["verdict"] == "validated"
    assert late.get_json()["payer"] == "Refunds Inc"
    # A scan made now, after the deadline, is still refused for a form that expired.
    other = world.issue("shop", COAT)
    _deadline(app, other["id"], 1)
    runner.invoke(args=["expire-forms"])
    assert world.post("kiosk", "/api/v1/scans", {"qr_payload": other["qr_payload"]}).get_json()[
        "reason_code"] == "deadline_passed"


# --- what devices report of the replays the API refused ---------------------------

def _report(n, **changes):
    return {"idempotency_key": f"kiosk:scan-{n}", "kind": "qr", "form_id": "NL2BX7Q4KA",
            "scanned_at": _ago(hours=2), "refused_at": _ago(minutes=1), "status": 422,
            "code": "scanned_before_last_contact", "detail": "Before the device's last live scan.", **changes}


def test_a_device_reports_refused_replays_once_and_only_devices_may(world, app):
    r = world.post("kiosk", "/api/v1/scans/refused", {"items": [_report(1), _report(2)]})
    assert (r.status_code, r.get_json()) == (200, {"recorded": 2})
    again = world.post("kiosk", "/api/v1/scans/refused", {"items": [_report(2), _report(3)]})
    assert again.get_json() == {"recorded": 1}
    assert world.post("officer", "/api/v1/scans/refused", {"items": [_report(4)]}).status_code == 403
    assert world.post("kiosk", "/api/v1/scans/refused", {"items": [_report(5, status=500)]}).status_code == 422
    assert world.post("kiosk", "/api/v1/scans/refused", {"items": [_report(n) for n in range(101)]}).status_code == 422


def test_a_device_cannot_flood_the_refused_replays(world, app):
    app.config["REFUSED_REPORTS_PER_DEVICE_PER_HOUR"] = 2
    statuses = [world.post("kiosk", "/api/v1/scans/refused", {"items": [_report(n)]}).status_code for n in range(3)]
    assert statuses == [200, 200, 429]
    assert world.post("rtm-kiosk", "/api/v1/scans/refused", {"items": [_report(9)]}).status_code == 200
