"""The bench's floor (bench/minimal_app.py) keeps the guarantees it claims.

The floor is the yardstick the real scan and issue are measured against:
were it to skip the device check, the signature, the compare-and-set or
the scan row, every ratio read against it would flatter the API. It
speaks plain psycopg, so it runs on PostgreSQL only: these tests run
where the suite has PostgreSQL (``make test`` and CI always do), on the
API's own schema, beside the API that made the world.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.builders import form_body, rows
from tests.conftest import BACKENDS

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def floor(app, database_url, monkeypatch):
    """The floor's Flask app in-process, on the test's database, with the
    keys the API uses; its pool closed afterwards."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    spec = importlib.util.spec_from_file_location("minimal_app", BENCH / "minimal_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module.app.test_client()
    if module._floor is not None:
        module._floor.pool.close()


def issued(world) -> dict:
    world.invoices += 1
    r = world.post("shop", "/api/v1/forms", form_body(invoice=f"FLOOR-{world.invoices}"))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def scan(floor, world, device, payload):
    return floor.post("/minimal/scan", json={"qr_payload": payload}, headers=world.auth(device))


# PostgreSQL only (see the docstring): the tests exist where it does.
if "postgresql" in BACKENDS:
    pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

    def test_minimal_scan_validates_a_form_once_and_records_every_scan(floor, world, database_url):
        form = issued(world)
        first = scan(floor, world, "kiosk", form["qr_payload"])
        again = scan(floor, world, "kiosk", form["qr_payload"])
        elsewhere = scan(floor, world, "rtm-kiosk", form["qr_payload"])
        assert (first.status_code, first.get_json()) == (200, {
            "form_id": form["id"], "verdict": "validated", "reason_code": None})
        assert again.get_json()["verdict"] == "validated"
        assert elsewhere.get_json() == {"form_id": form["id"], "verdict": "refused",
                                        "reason_code": "validated_elsewhere"}
        [(status, exit_point, total)] = rows(
            database_url, "SELECT f.status, e.code, f.validated_total_cents FROM forms f "
                          "JOIN exit_points e ON e.id = f.exit_point_id WHERE f.id = :id", id=form["id"])
        assert (status, exit_point, total) == ("validated", "AMS", form["total_cents"])
        recorded = rows(database_url, "SELECT device_id, verdict, reason_code FROM scans WHERE form_id = :id "
                                      "ORDER BY id", id=form["id"])
        assert recorded == [(world.ids["kiosk"], "validated", None), (world.ids["kiosk"], "validated", None),
                            (world.ids["rtm-kiosk"], "refused", "validated_elsewhere")]
        # The API sees the floor's validation as its own.
        r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"]})
        assert r.get_json()["verdict"] == "validated"

    def test_minimal_scan_refuses_forged_codes_and_devices_it_cannot_trust(floor, world, database_url):
        form = issued(world)
        header, claims, signature = form["qr_payload"].split(".")
        forged = f"{header}.{claims}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
        r = scan(floor, world, "kiosk", forged)
        assert r.get_json() == {"form_id": None, "verdict": "refused", "reason_code": "bad_signature"}
        stolen = world.devices["kiosk"].rsplit(".", 1)[0] + ".not-the-secret"
        r = floor.post("/minimal/scan", json={"qr_payload": form["qr_payload"]},
                       headers={"Authorization": f"Bearer {stolen}"})
        assert r.status_code == 401
        assert world.client.delete(f"/api/v1/devices/{world.ids['kiosk']}",
                                   headers=world.auth("root")).status_code == 200
        assert scan(floor, world, "kiosk", form["qr_payload"]).status_code == 401
        assert rows(database_url, "SELECT status FROM forms WHERE id = :id", id=form["id"]) == [("issued",)]

    def test_minimal_issue_stores_a_form_the_api_can_scan_and_refuses_a_revoked_token(
            floor, world, database_url):
        body = form_body(invoice="FLOOR-ISSUE")
        r = floor.post("/minimal/forms", json=body, headers=world.auth("shop"))
        assert r.status_code == 201, r.get_json()
        form_id = r.get_json()["id"]
        assert floor.post("/minimal/forms", json=body, headers=world.auth("shop")).status_code == 409
        # Stored as the API stores a form: totals (fee of the shop's
        # intermediary), passport encrypted, lines; the API reads it and
        # scans its QR payload.
        shown = world.get("shop", f"/api/v1/forms/{form_id}").get_json()
        assert shown["traveller"]["passport_number"] == body["traveller"]["passport_number"]
        assert (shown["total_cents"], shown["refund_cents"], len(shown["items"])) == (12100, 1890, 1)
        [(stored,)] = rows(database_url, "SELECT passport_number FROM forms WHERE id = :id", id=form_id)
        assert body["traveller"]["passport_number"] not in stored
        r = world.post("kiosk", "/api/v1/scans", {"qr_payload": r.get_json()["qr_payload"]})
        assert (r.get_json()["form_id"], r.get_json()["verdict"]) == (form_id, "validated")
        # Ineligible (an EU resident), and tokens that are not a retailer's.
        eu = form_body(invoice="FLOOR-EU")
        eu["traveller"]["residence_country"] = "DE"
        assert floor.post("/minimal/forms", json=eu, headers=world.auth("shop")).status_code == 422
        assert floor.post("/minimal/forms", json=body, headers=world.auth("kiosk")).status_code == 401
        assert floor.post("/minimal/forms", json=body, headers=world.auth("officer")).status_code == 401
        # Disabling the user refuses their token at once, as the API does.
        [(shop_id,)] = rows(database_url, "SELECT id FROM users WHERE username = 'shop'")
        assert world.post("root", f"/api/v1/users/{shop_id}/disable").status_code == 200
        again = form_body(invoice="FLOOR-AFTER")
        assert floor.post("/minimal/forms", json=again, headers=world.auth("shop")).status_code == 401

    def test_minimal_queue_read_shows_pending_checks_to_officers_only(floor, world, database_url):
        form = issued(world)
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE forms SET status = 'check_required' WHERE id = :id"), {"id": form["id"]})
            conn.execute(text(
                "INSERT INTO checks (form_id, exit_point_id, status, fired_rules, opened_at) "
                "SELECT :id, id, 'pending', '[]', now() FROM exit_points WHERE code = 'AMS'"), {"id": form["id"]})
        engine.dispose()
        r = floor.get("/minimal/checks?exit_point=AMS", headers=world.auth("officer"))
        [check] = r.get_json()["items"]
        assert (check["form_id"], check["passport_number"], check["line_count"]) == (form["id"], "******678", 1)
        assert floor.get("/minimal/checks?exit_point=AMS", headers=world.auth("shop")).status_code == 401
