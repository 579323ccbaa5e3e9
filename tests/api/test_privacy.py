"""Passport numbers and names are personal data: never in logs."""
from __future__ import annotations

import logging

import requests


def test_a_whole_day_of_requests_logs_no_passport_number_or_name(world, live_server, caplog, app):
    caplog.set_level(logging.DEBUG)
    form = world.issue("shop", {"description": "Watch", "quantity": 1, "unit_price_cents": 80000,
                                "vat_rate": 21, "category": "watches"})
    headers = {"Authorization": f"Bearer {world.devices['kiosk']}"}
    with requests.Session() as http:
        scan = http.post(f"{live_server}/api/v1/scans", json={"qr_payload": form["qr_payload"]}, headers=headers)
        assert scan.json()["verdict"] == "check_required"
        officer = {"Authorization": f"Bearer {world.tokens['officer']}"}
        assert http.get(f"{live_server}/api/v1/checks", headers=officer).status_code == 200
        decided = http.post(f"{live_server}/api/v1/forms/{form['id']}/decision", headers=officer,
                            json={"outcome": "rejected", "reason_code": "passport_mismatch"})
        assert decided.status_code == 200
        again = http.post(f"{live_server}/api/v1/forms/{form['id']}/decision", headers=officer,
                          json={"outcome": "validated"})
        assert again.status_code == 409
        shop = {"Authorization": f"Bearer {world.tokens['shop']}"}
        duplicate = http.post(f"{live_server}/api/v1/forms", headers=shop, json={
            "invoice_number": form["invoice_number"], "purchase_date": form["purchase_date"],
            "traveller": form["traveller"] | {"email": None}, "items": [{
                "description": "Watch", "quantity": 1, "unit_price_cents": 80000, "vat_rate": 21,
                "category": "watches"}]})
        assert duplicate.status_code == 409
    assert "POST /api/v1/scans" in caplog.text  # the requests were logged ...
    for secret in ("E12345678", "Chen"):
        assert secret not in caplog.text  # ... but not who the traveller is


def test_passport_numbers_are_encrypted_at_rest_and_keys_rotate_without_downtime(world, app, runner):
    from cryptography.fernet import Fernet
    from sqlalchemy import text

    from api import database
    from api.personal_data import cipher_from_keys

    form = world.issue("shop")

    def stored():
        with app.app_context():
            return database.session().execute(
                text("SELECT passport_number FROM forms WHERE id = :id"), {"id": form["id"]}).scalar_one()

    first = stored()
    assert "E12345678" not in first and first.startswith("gAAAAA")
    # A new key goes in front; the old one still decrypts meanwhile.
    old_keys = app.config["PASSPORT_KEYS"]
    new_key = Fernet.generate_key().decode()
    app.config["PASSPORT_KEYS"] = f"{new_key},{old_keys}"
    app.extensions["passport_cipher"] = cipher_from_keys(app.config["PASSPORT_KEYS"])
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["traveller"]["passport_number"] == "E12345678"
    assert "1 passport number(s)" in runner.invoke(args=["reencrypt-personal-data"]).output
    assert stored() != first
    # Re-encrypted with the new key alone: the old key can go.
    app.extensions["passport_cipher"] = cipher_from_keys(new_key)
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["traveller"]["passport_number"] == "E12345678"


def test_a_plain_passport_number_from_before_encryption_is_read_and_then_encrypted(world, app, runner):
    from sqlalchemy import text

    from api import database

    form = world.issue("shop")
    with app.app_context():
        session = database.session()
        session.execute(text("UPDATE forms SET passport_number = 'E12345678' WHERE id = :id"), {"id": form["id"]})
        session.commit()
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["traveller"]["passport_number"] == "E12345678"
    runner.invoke(args=["reencrypt-personal-data"])
    with app.app_context():
        raw = database.session().execute(
            text("SELECT passport_number FROM forms WHERE id = :id"), {"id": form["id"]}).scalar_one()
    assert raw.startswith("gAAAAA")
