"""Provisioning devices without typing: a one-time pairing code."""
from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import zxingcpp
from PIL import Image

from api import database
from api.models import PairingCode, utcnow
from shared.pairing import parse_pairing, pairing_text


def pair_code(runner, tmp_path, *extra):
    png = tmp_path / "pair.png"
    result = runner.invoke(args=["pair-device", "Kiosk D7", "--exit-point", "ams", "--png", str(png), *extra])
    assert result.exit_code == 0, result.output
    assert "█" in result.output or "▀" in result.output  # the QR code drawn in the terminal
    decoded = zxingcpp.read_barcodes(np.asarray(Image.open(png).convert("L")), formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(decoded) == 1
    return parse_pairing(decoded[0].text)


def test_a_kiosk_pairs_by_scanning_the_printed_code_and_can_then_scan_forms(world, runner, tmp_path):
    pairing = pair_code(runner, tmp_path, "--api-url", "http://10.0.0.5:8000/")
    assert pairing.api_url == "http://10.0.0.5:8000"
    r = world.client.post("/api/v1/devices/pair", json={"code": pairing.code})
    assert r.status_code == 201
    device = r.get_json()
    assert device["name"] == "Kiosk D7" and device["kind"] == "kiosk" and device["exit_point"] == "AMS"
    form = world.issue("shop")
    scan = world.client.post("/api/v1/scans", json={"qr_payload": form["qr_payload"]},
                             headers={"Authorization": f"Bearer {device['token']}"})
    assert scan.get_json()["verdict"] == "validated"


def test_a_pairing_code_works_once(world, runner, tmp_path):
    pairing = pair_code(runner, tmp_path)
    assert world.client.post("/api/v1/devices/pair", json={"code": pairing.code}).status_code == 201
    again = world.client.post("/api/v1/devices/pair", json={"code": pairing.code})
    assert again.status_code == 409 and again.get_json()["code"] == "pairing_code_used"


def test_an_expired_or_unknown_pairing_code_is_refused(world, runner, tmp_path, app):
    pairing = pair_code(runner, tmp_path)
    with app.app_context():
        session = database.session()
        for row in session.query(PairingCode):
            row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    expired = world.client.post("/api/v1/devices/pair", json={"code": pairing.code})
    assert expired.status_code == 410 and expired.get_json()["code"] == "pairing_code_expired"
    unknown = world.client.post("/api/v1/devices/pair", json={"code": "made-up"})
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "pairing_code_unknown"


def test_pair_device_needs_an_existing_exit_point(world, runner):
    result = runner.invoke(args=["pair-device", "X", "--exit-point", "ZZZ"])
    assert result.exit_code != 0 and "no exit point ZZZ" in result.output


def test_a_revoked_device_loses_access_at_once(world):
    form = world.issue("shop")
    assert world.scan("kiosk", form["qr_payload"]).status_code == 200
    r = world.client.delete(f"/api/v1/devices/{world.ids['kiosk']}", headers=world.auth("root"))
    assert r.status_code == 200 and r.get_json()["revoked_at"]
    assert world.scan("kiosk", form["qr_payload"]).status_code == 401
    listed = world.get("root", "/api/v1/devices").get_json()
    assert {d["name"]: bool(d["revoked_at"]) for d in listed} == {"kiosk": True, "rtm-kiosk": False}


def test_pairing_text_round_trips_and_rejects_other_codes():
    text = pairing_text("https://api.example.org", "abc")
    assert re.match(r"^taxfree-pair://device\?", text)
    assert parse_pairing(text).code == "abc"
    assert parse_pairing("https://example.org/?code=abc") is None
    assert parse_pairing("taxfree-pair://device?api=ftp://x&code=abc") is None


def test_a_device_learns_its_exit_point_and_desk_from_the_api(world):
    r = world.get("kiosk", "/api/v1/devices/me")
    assert r.status_code == 200
    assert r.get_json() == {"id": world.ids["kiosk"], "name": "kiosk", "kind": "kiosk", "exit_point": {
        "id": 1, "code": "AMS", "name": "Schiphol", "kind": "airport", "desk_location": "Departures 2",
        "opening_hours": None}}
    assert world.get("officer", "/api/v1/devices/me").status_code == 403
