"""A passport pulls up all of a traveller's open forms; scans a kiosk queued
while offline arrive once and are judged at the moment they were made."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from api import database
from api.models import Form

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


def test_a_scan_made_offline_before_the_deadline_counts_even_if_it_arrives_after(world, app):
    form = world.issue("shop", COAT)
    with app.app_context():
        session = database.session()
        # The deadline was yesterday; the kiosk scanned two days ago while offline.
        session.get(Form, form["id"]).export_deadline = datetime.now(timezone.utc).date() - timedelta(days=1)
        session.commit()
    scanned_at = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"], "scanned_at": scanned_at})
    assert r.get_json()["verdict"] == "validated"
    scanned = [e for e in events(world, form["id"]) if e["type"] == "form.scanned"][0]
    assert scanned["data"]["scanned_at"] == scanned_at
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["validated_at"].startswith(scanned_at[:16])


def test_a_scan_made_today_after_the_deadline_is_refused(world, app):
    form = world.issue("shop", COAT)
    with app.app_context():
        session = database.session()
        session.get(Form, form["id"]).export_deadline = datetime.now(timezone.utc).date() - timedelta(days=2)
        session.commit()
    r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"]})
    assert r.get_json()["reason_code"] == "deadline_passed"


def test_scans_dated_in_the_future_or_weeks_ago_are_refused(world):
    form = world.issue("shop", COAT)
    for when in (datetime.now(timezone.utc) + timedelta(hours=1), datetime.now(timezone.utc) - timedelta(days=30)):
        r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"], "scanned_at": when.isoformat()})
        assert r.status_code == 422 and list(r.get_json()["errors"]) == ["scanned_at"]


def test_an_offline_scan_made_before_the_deadline_validates_a_form_expired_since(world, app, runner):
    form = world.issue("shop", COAT)
    with app.app_context():
        session = database.session()
        session.get(Form, form["id"]).export_deadline = datetime.now(timezone.utc).date() - timedelta(days=1)
        session.commit()
    assert "1 form(s) expired" in runner.invoke(args=["expire-forms"]).output
    scanned_at = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    late = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"], "scanned_at": scanned_at})
    assert late.get_json()["verdict"] == "validated"
    assert late.get_json()["payer"] == "Refunds Inc"
    # A scan made now, after the deadline, is still refused for a form that expired.
    other = world.issue("shop", COAT)
    with app.app_context():
        session = database.session()
        session.get(Form, other["id"]).export_deadline = datetime.now(timezone.utc).date() - timedelta(days=1)
        session.commit()
    runner.invoke(args=["expire-forms"])
    assert world.post("kiosk", "/api/v1/scans", {"qr_payload": other["qr_payload"]}).get_json()[
        "reason_code"] == "deadline_passed"
