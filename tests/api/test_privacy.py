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
