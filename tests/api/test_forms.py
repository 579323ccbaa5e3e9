"""Issuing forms: eligibility at the boundaries, totals, idempotency, who sees what."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import zxingcpp
from PIL import Image
import io
from sqlalchemy import event, update

from api import database
from api.models import Intermediary

from tests.builders import TODAY, form_body, item, traveller


def problem(r, status, code):
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["status"] == status and body["code"] == code
    return body


def test_a_valid_form_gets_an_id_a_deadline_totals_and_a_signed_qr_payload(world):
    r = world.post("shop", "/api/v1/forms", form_body(
        item(12100, quantity=2), item(5450, vat_rate=9, category="food"),
        purchase_date=date(2026, 11, 26)))
    assert r.status_code == 201
    assert r.headers["Location"] == f"/api/v1/forms/{r.get_json()['id']}"
    form = r.get_json()
    assert form["status"] == "issued"
    assert form["id"].startswith("NL") and len(form["id"]) == 10
    assert form["total_cents"] == 2 * 12100 + 5450
    # 242.00 at 21 % holds 42.00 VAT; 54.50 at 9 % holds 4.50.
    assert [line["vat_cents"] for line in form["items"]] == [4200, 450]
    assert form["vat_cents"] == 4650
    assert form["fee_cents"] == 465  # the intermediary keeps 10 % of the VAT
    assert form["refund_cents"] == 4185
    assert form["export_deadline"] == "2027-02-28"
    assert form["items"][1]["vat_rate"] == 9
    assert form["qr_payload"].count(".") == 2


def test_a_shop_without_intermediary_refunds_all_the_vat(world):
    form = world.issue("books", item(6500, vat_rate=9, category="books"))
    assert form["vat_cents"] == 537 and form["fee_cents"] == 0 and form["refund_cents"] == 537


@pytest.mark.parametrize("price, accepted", [(4999, False), (5000, True)])
def test_the_dutch_minimum_is_at_least_50_euros_including_vat(world, price, accepted):
    r = world.post("shop", "/api/v1/forms", form_body(item(price)))
    if accepted:
        assert r.status_code == 201
    else:
        body = problem(r, 422, "ineligible_form")
        assert list(body["errors"]) == ["items"]
        assert "EUR 49.99" in body["errors"]["items"][0]


@pytest.mark.parametrize("purchase, deadline", [
    (date(2026, 1, 31), "2026-04-30"),
    (date(2026, 12, 31), "2027-03-31"),
])
def test_export_deadline_is_the_end_of_the_third_month_after_purchase(world, purchase, deadline, monkeypatch):
    # Issued on the day of purchase, as at a till.
    from api.resources import forms as resource
    from datetime import datetime, timezone
    monkeypatch.setattr(resource, "utcnow", lambda: datetime(purchase.year, purchase.month, purchase.day, 12,
                                                              tzinfo=timezone.utc))
    form = world.issue("shop", purchase_date=purchase)
    assert form["export_deadline"] == deadline


def test_a_traveller_living_in_the_eu_is_refused_naming_the_field(world):
    body = problem(world.post("shop", "/api/v1/forms", form_body(
        traveller=traveller(residence_country="FR"))), 422, "ineligible_form")
    assert list(body["errors"]) == ["traveller.residence_country"]


@pytest.mark.parametrize("country", ["CH", "NO", "GB", "US"])
def test_travellers_living_in_switzerland_norway_uk_or_us_qualify(world, country):
    r = world.post("shop", "/api/v1/forms", form_body(traveller=traveller(residence_country=country)))
    assert r.status_code == 201


def test_a_purchase_dated_tomorrow_is_refused(world):
    body = problem(world.post("shop", "/api/v1/forms", form_body(
        purchase_date=TODAY + timedelta(days=2))), 422, "ineligible_form")
    assert "purchase_date" in body["errors"]


def test_services_cannot_be_refunded(world):
    body = problem(world.post("shop", "/api/v1/forms", form_body(
        item(10000, category="services"))), 422, "ineligible_form")
    assert "items.0.category" in body["errors"]


def test_an_unknown_vat_rate_is_refused_on_its_line(world):
    body = problem(world.post("shop", "/api/v1/forms", form_body(
        item(), item(9000, vat_rate=19))), 422, "ineligible_form")
    assert list(body["errors"]) == ["items.1.vat_rate"]


def test_schema_errors_name_each_field(world):
    bad = form_body(traveller=traveller(passport_country="XX", date_of_birth="yesterday"))
    bad["items"][0]["quantity"] = "two"
    bad["status"] = "validated"  # clients never set the status
    body = problem(world.post("shop", "/api/v1/forms", bad), 422, "invalid_request")
    assert set(body["errors"]) == {
        "traveller.passport_country", "traveller.date_of_birth", "items.0.quantity", "status"}


def test_totals_sent_by_the_client_are_refused_not_trusted(world):
    bad = form_body()
    bad["total_cents"] = 1
    body = problem(world.post("shop", "/api/v1/forms", bad), 422, "invalid_request")
    assert "total_cents" in body["errors"]


def test_one_invoice_gets_one_form(world):
    world.issue("shop", invoice="A-1")
    body = problem(world.post("shop", "/api/v1/forms", form_body(invoice="A-1")), 409, "duplicate_invoice")
    assert "invoice_number" in body["errors"]


def test_a_retry_with_the_same_idempotency_key_replays_the_first_response(world):
    headers = {"Idempotency-Key": "till-7-0001"}
    first = world.post("shop", "/api/v1/forms", form_body(invoice="R-1"), headers=headers)
    again = world.post("shop", "/api/v1/forms", form_body(invoice="R-1"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    listed = world.get("shop", "/api/v1/forms").get_json()["items"]
    assert [f["id"] for f in listed] == [first.get_json()["id"]]


def test_the_same_idempotency_key_with_another_body_is_refused(world):
    headers = {"Idempotency-Key": "till-7-0002"}
    world.post("shop", "/api/v1/forms", form_body(invoice="R-2"), headers=headers)
    problem(world.post("shop", "/api/v1/forms", form_body(invoice="R-3"), headers=headers),
            422, "idempotency_key_reused")


def test_idempotency_keys_belong_to_their_caller(world):
    headers = {"Idempotency-Key": "shared-key"}
    a = world.post("shop", "/api/v1/forms", form_body(invoice="K-1"), headers=headers)
    b = world.post("books", "/api/v1/forms", form_body(invoice="K-1"), headers=headers)
    assert a.status_code == b.status_code == 201
    assert a.get_json()["id"] != b.get_json()["id"]


def test_a_retailer_never_sees_another_retailers_form(world):
    form = world.issue("shop")
    for path in (f"/api/v1/forms/{form['id']}", f"/api/v1/forms/{form['id']}/events",
                 f"/api/v1/forms/{form['id']}/qr.png"):
        problem(world.get("books", path), 404, "form_not_found")
    problem(world.post("books", f"/api/v1/forms/{form['id']}/cancel"), 404, "form_not_found")
    assert world.get("books", "/api/v1/forms").get_json()["items"] == []


def test_an_intermediary_issues_for_its_linked_retailers_only(world):
    r = world.post("refunds", "/api/v1/forms", form_body(retailer_vat="NL859559001B01"))
    assert r.status_code == 201
    form = r.get_json()
    assert world.get("shop", f"/api/v1/forms/{form['id']}").status_code == 200
    body = problem(world.post("refunds", "/api/v1/forms", form_body(retailer_vat="NL000099998B57")),
                   422, "invalid_request")
    assert list(body["errors"]) == ["retailer_vat"]
    problem(world.get("other", f"/api/v1/forms/{form['id']}"), 404, "form_not_found")
    problem(world.post("refunds", "/api/v1/forms", form_body()), 422, "invalid_request")


def test_a_retailer_cannot_issue_for_another_shop(world):
    problem(world.post("shop", "/api/v1/forms", form_body(retailer_vat="NL000099998B57")),
            422, "invalid_request")


def test_kiosks_and_officers_cannot_issue_forms(world):
    problem(world.post("kiosk", "/api/v1/forms", form_body()), 403, "forbidden")
    problem(world.post("officer", "/api/v1/forms", form_body()), 403, "forbidden")


def test_form_ids_are_typed_forgivingly(world):
    form = world.issue("shop")
    typed = " " + form["id"][:5].lower() + "-" + form["id"][5:].lower()
    assert world.get("shop", f"/api/v1/forms/{typed}").get_json()["id"] == form["id"]


def test_lists_mask_the_passport_number_and_details_show_it_to_the_owner(world):
    form = world.issue("shop")
    listed = world.get("shop", "/api/v1/forms").get_json()["items"][0]
    assert listed["passport_number"] == "******678"
    assert "E12345678" not in world.get("shop", "/api/v1/forms").get_data(as_text=True)
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["traveller"]["passport_number"] == "E12345678"


def test_cursor_pages_walk_every_form_once(world):
    ids = {world.issue("shop")["id"] for _ in range(7)}
    seen, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = world.get("shop", "/api/v1/forms", query_string=query).get_json()
        assert set(page) == {"items", "next_cursor"}
        seen += [f["id"] for f in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7


def test_forms_filter_by_status_and_updated_since(world):
    a = world.issue("shop")
    b = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{b['id']}/cancel")
    cancelled = world.get("shop", "/api/v1/forms", query_string={"status": "cancelled"}).get_json()["items"]
    assert [f["id"] for f in cancelled] == [b["id"]]
    later = world.get("shop", "/api/v1/forms", query_string={"updated_since": a["updated_at"]}).get_json()
    assert {f["id"] for f in later["items"]} == {a["id"], b["id"]}
    far = world.get("shop", "/api/v1/forms", query_string={"updated_since": "2999-01-01T00:00:00+00:00"})
    assert far.get_json()["items"] == []
    problem(world.get("shop", "/api/v1/forms", query_string={"cursor": "garbage"}), 400, "invalid_cursor")
    problem(world.get("shop", "/api/v1/forms", query_string={"limit": 1000}), 422, "invalid_request")


def test_a_form_can_be_cancelled_once_while_issued(world):
    form = world.issue("shop")
    r = world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    problem(world.post("shop", f"/api/v1/forms/{form['id']}/cancel"), 409, "form_not_cancellable")
    validated = world.issue("shop")
    world.scan("kiosk", validated["qr_payload"])
    problem(world.post("shop", f"/api/v1/forms/{validated['id']}/cancel"), 409, "form_not_cancellable")


def test_the_audit_trail_records_issue_and_cancel_in_order(world):
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    events = world.get("shop", f"/api/v1/forms/{form['id']}/events").get_json()["items"]
    assert [e["type"] for e in events] == ["form.issued", "form.cancelled"]
    assert all(e["actor"].startswith("user:") for e in events)


def test_the_qr_png_decodes_to_the_signed_payload(world):
    form = world.issue("shop")
    r = world.get("shop", f"/api/v1/forms/{form['id']}/qr.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    image = np.asarray(Image.open(io.BytesIO(r.data)).convert("L"))
    decoded = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [d.text for d in decoded] == [form["qr_payload"]]


def test_the_qr_svg_is_an_svg_document(world):
    form = world.issue("shop")
    r = world.get("shop", f"/api/v1/forms/{form['id']}/qr.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert b"<svg" in r.data and b"<path" in r.data


def test_an_action_on_a_stale_copy_of_a_form_is_refused_with_412(world):
    form = world.issue("shop")
    r = world.get("shop", f"/api/v1/forms/{form['id']}")
    etag = r.headers["ETag"]
    world.scan("kiosk", form["qr_payload"])  # the form changes meanwhile
    changed = world.get("shop", f"/api/v1/forms/{form['id']}").headers["ETag"]
    assert changed != etag
    stale = world.post("shop", f"/api/v1/forms/{form['id']}/refund",
                       {"amount_cents": 100, "paid_at": "2026-11-28T10:00:00+00:00"}, headers={"If-Match": etag})
    problem(stale, 412, "precondition_failed")
    fresh = world.post("shop", f"/api/v1/forms/{form['id']}/refund",
                       {"amount_cents": 100, "paid_at": "2026-11-28T10:00:00+00:00"}, headers={"If-Match": changed})
    assert fresh.status_code == 200 and fresh.headers["ETag"] not in (etag, changed)


def test_a_shops_form_reads_its_shop_with_the_user_and_never_from_an_earlier_request(app, world):
    """The shop's row and its intermediary's fee come with the user's row
    (one read, not two) and are read again by every request: a fee changed
    between two forms is the fee of the second."""
    engine = app.extensions["db_engine"]
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        first = world.issue("shop", item(12100))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.startswith("select") and "from retailers" in s.replace("join retailers",
                                                                                                "from retailers")]
    assert len(reads) == 1 and "from users" in reads[0], reads
    assert first["fee_cents"] == 210  # 10 % of the 21.00 VAT

    with app.app_context():
        session = database.session()
        session.execute(update(Intermediary).values(fee_bp=2000))
        session.commit()
    second = world.issue("shop", item(12100))
    assert (second["vat_cents"], second["fee_cents"], second["refund_cents"]) == (2100, 420, 1680)
    assert second["retailer_vat"] == first["retailer_vat"]


@pytest.mark.parametrize("who, shop_vat", [("shop", None), ("refunds", "NL859559001B01")])
def test_an_issued_form_is_answered_exactly_as_it_reads_back(world, who, shop_vat):
    """A shop's own form is answered from the values written (no ORM
    objects), an intermediary's from the session's objects: both as the
    stored form reads."""
    body = form_body(item(12100, quantity=2, serial_number="SN-1"), item(5450, vat_rate=9, category="food"))
    if shop_vat:
        body["retailer_vat"] = shop_vat
    r = world.post(who, "/api/v1/forms", body)
    assert r.status_code == 201, r.get_json()
    read = world.get(who, r.headers["Location"])
    assert read.status_code == 200
    assert r.get_json() == read.get_json()
    assert r.get_json()["retailer_name"] and r.get_json()["traveller"]["passport_number"]
