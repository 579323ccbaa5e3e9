"""POST /forms/batch: an intermediary or a till submits up to 500 forms at
once; each form gets its own result and one bad form never blocks the others."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.builders import form_body, item, traveller

BATCH = "/api/v1/forms/batch"
SHOP_VAT = "NL859559001B01"
BOOKS_VAT = "NL000099998B57"  # a retailer without an intermediary


def for_shop(invoice, **overrides) -> dict:
    return form_body(invoice=invoice, retailer_vat=SHOP_VAT, **overrides)


def listed_invoices(world, who="refunds") -> list[str]:
    r = world.get(who, "/api/v1/forms", query_string={"limit": 200})
    return sorted(f["invoice_number"] for f in r.get_json()["items"])


def test_good_forms_are_stored_and_each_bad_one_gets_its_own_problem(world):
    world.issue("shop", invoice="INV-EXISTING")
    malformed = for_shop("B-2")
    del malformed["traveller"]
    malformed["items"][0]["vat_rate"] = "lots"
    batch = [
        for_shop("B-1"),
        malformed,
        for_shop("B-3", traveller=traveller(residence_country="DE")),  # lives in the EU
        for_shop("B-1"),                                                # again, in this batch
        for_shop("INV-EXISTING"),                                       # stored before
        for_shop("B-6", items=[item(9900, quantity=2)]),
        form_body(invoice="B-7", retailer_vat="NL123456789B01"),        # no such retailer
        form_body(invoice="B-8", retailer_vat=BOOKS_VAT),               # not this intermediary's
        42,
    ]

    r = world.post("refunds", BATCH, {"forms": batch})

    assert r.status_code == 200, r.get_json()
    results = r.get_json()["items"]
    assert [(x["index"], x["status"], x["body"].get("code")) for x in results] == [
        (0, 201, None),
        (1, 422, "invalid_request"),
        (2, 422, "ineligible_form"),
        (3, 409, "duplicate_invoice"),
        (4, 409, "duplicate_invoice"),
        (5, 201, None),
        (6, 422, "invalid_request"),
        (7, 422, "invalid_request"),
        (8, 422, "invalid_request"),
    ]
    assert sorted(results[1]["body"]["errors"]) == ["items.0.vat_rate", "traveller"]
    assert list(results[2]["body"]["errors"]) == ["traveller.residence_country"]
    assert results[6]["body"]["errors"] == results[7]["body"]["errors"] == {
        "retailer_vat": ["No retailer with this VAT number that you act for."]}
    assert results[8]["body"]["errors"] == {"_schema": ["Invalid input type."]}
    assert results[3]["body"] == {
        "type": "about:blank", "title": "Conflict", "status": 409,
        "detail": "Invoice B-1 already has a tax-free form.",
        "instance": "/api/v1/forms/batch#/forms/3", "code": "duplicate_invoice",
        "errors": {"invoice_number": ["This invoice already has a tax-free form."]},
    }
    stored = {x["body"]["invoice_number"]: x["body"] for x in results if x["status"] == 201}
    assert sorted(stored) == ["B-1", "B-6"]
    assert stored["B-6"]["total_cents"] == 19800 and stored["B-6"]["status"] == "issued"
    for form in stored.values():
        assert world.get("refunds", f"/api/v1/forms/{form['id']}").get_json() == form
    assert listed_invoices(world) == ["B-1", "B-6", "INV-EXISTING"]


def test_a_retailers_till_submits_a_batch_for_its_own_shop(world):
    r = world.post("books", BATCH, {"forms": [
        form_body(invoice="T-1", items=[item(6500, vat_rate=9, category="books")]),
        form_body(invoice="T-2", retailer_vat=SHOP_VAT),
    ]})
    results = r.get_json()["items"]
    assert [(x["status"], x["body"].get("retailer_vat"), x["body"].get("code")) for x in results] == [
        (201, BOOKS_VAT, None), (422, None, "invalid_request")]
    assert results[1]["body"]["errors"] == {"retailer_vat": ["You can only issue forms for your own shop."]}


def test_a_batch_retried_with_its_idempotency_key_is_replayed_not_stored_twice(world):
    body = {"forms": [for_shop("K-1"), for_shop("K-2"), for_shop("K-1")]}
    headers = {"Idempotency-Key": "refunds-batch-0001"}

    first = world.post("refunds", BATCH, body, headers=headers)
    again = world.post("refunds", BATCH, body, headers=headers)

    assert [x["status"] for x in first.get_json()["items"]] == [201, 201, 409]
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert listed_invoices(world) == ["K-1", "K-2"]
    other = world.post("refunds", BATCH, {"forms": [for_shop("K-3")]}, headers=headers)
    assert (other.status_code, other.get_json()["code"]) == (422, "idempotency_key_reused")


def test_a_batch_holds_1_to_500_forms(world):
    for forms in ([], [for_shop(f"L-{n}") for n in range(501)]):
        r = world.post("refunds", BATCH, {"forms": forms})
        assert r.status_code == 422, r.get_json()
        assert list(r.get_json()["errors"]) == ["forms"]
    r = world.post("refunds", BATCH, {})
    assert (r.status_code, list(r.get_json()["errors"])) == (422, ["forms"])
    assert listed_invoices(world) == []


def test_a_full_batch_of_500_forms_is_stored(world):
    forms = [for_shop(f"F-{n:03d}") for n in range(500)]
    started = time.monotonic()
    r = world.post("refunds", BATCH, {"forms": forms})
    elapsed = time.monotonic() - started

    assert r.status_code == 200
    results = r.get_json()["items"]
    assert [x["index"] for x in results] == list(range(500))
    assert {x["status"] for x in results} == {201}
    assert len({x["body"]["id"] for x in results}) == 500
    seen, cursor = 0, None
    for _page in range(3):
        page = world.get("refunds", "/api/v1/forms", query_string={
            "limit": 200, **({"cursor": cursor} if cursor else {})}).get_json()
        seen += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == 500
    assert elapsed < 30


def test_only_issuers_submit_batches(world):
    for who in ("officer", "kiosk"):
        r = world.post(who, BATCH, {"forms": [for_shop("X-1")]})
        assert (r.status_code, r.get_json()["code"]) == (403, "forbidden")


def test_a_batch_and_single_submissions_of_one_invoice_at_once_store_one_form(world, live_server):
    token = world.tokens["refunds"]
    headers = {"Authorization": f"Bearer {token}"}
    batch = {"forms": [for_shop(f"R-{n}") for n in range(30)] + [for_shop("RACE-1")]}
    start = threading.Barrier(6, timeout=30)

    def send(n):
        with requests.Session() as http:
            start.wait()
            if n == 0:
                r = http.post(f"{live_server}{BATCH}", json=batch, headers=headers, timeout=60)
                return [(x["body"].get("invoice_number"), x["status"]) for x in r.json()["items"]][-1]
            # Five tills, each with its own Idempotency-Key.
            r = http.post(f"{live_server}/api/v1/forms", json=for_shop("RACE-1"), timeout=60,
                          headers={**headers, "Idempotency-Key": f"till-{n}"})
            return ("RACE-1", r.status_code)

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(send, range(6)))

    assert sorted(status for _, status in outcomes) == [201] + [409] * 5, outcomes
    invoices = listed_invoices(world)
    assert invoices.count("RACE-1") == 1
    assert len(invoices) == 31


def test_a_form_stored_by_someone_else_at_the_same_moment_costs_only_that_form(world, monkeypatch):
    # The clash the checks cannot see coming: another request inserts the
    # same invoice between this batch's check and its INSERT. PostgreSQL
    # rolls back that form's SAVEPOINT; SQLite starts the batch over, when
    # the check then finds the other request's form.
    from sqlalchemy.exc import IntegrityError

    from api.problems import Problem
    from api.services import forms

    real_issue = forms.issue
    calls = []

    def issue_racing(session, principal, data, issuer, now):
        calls.append(data["invoice_number"])
        if data["invoice_number"] == "C-2":
            if calls.count("C-2") == 1:
                real_issue(session, principal, data, issuer, now)
                raise IntegrityError("INSERT INTO forms ...", {}, Exception("duplicate key"))
            raise Problem(409, "duplicate_invoice", "Invoice C-2 already has a tax-free form.")
        return real_issue(session, principal, data, issuer, now)

    monkeypatch.setattr(forms, "issue", issue_racing)
    r = world.post("refunds", BATCH, {"forms": [for_shop("C-1"), for_shop("C-2"), for_shop("C-3")]})

    assert [(x["status"], x["body"].get("code")) for x in r.get_json()["items"]] == [
        (201, None), (409, "duplicate_invoice"), (201, None)]
    assert listed_invoices(world) == ["C-1", "C-3"]
    monkeypatch.undo()
