"""Hostile text in every free-text field of a form: SQL and script injection,
Unicode edge cases, lengths at and past the limit, huge arrays. Each value is
either stored and given back exactly as sent, or refused with a 422 naming
the field; never a 5xx, and the database is unharmed."""
from __future__ import annotations

import copy
import json

import pytest

from tests.builders import form_body, item, traveller

SQL = [
    "x'); DROP TABLE forms; --",
    "' OR '1'='1",
    "1; SELECT pg_sleep(5); --",
    "\\'; DELETE FROM events; --",
]
SCRIPT = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}} ${7*7} %(x)s",
    "=HYPERLINK(\"http://example.invalid\")",
]
UNICODE = [
    "Koffer 🧳 met 💶",          # characters outside the BMP
    "abc\u202edcba",            # right-to-left override
    "e\u0301te\u0301",          # combining accents
    "zero\u200bwidth\ufeff",    # zero width space and BOM
    "退税 الضريبة Ωμέγα",        # CJK, Arabic, Greek
    "tab\tand\nnewline",
]
HOSTILE = SQL + SCRIPT + UNICODE

# Each free-text field of a form: where it goes in the request, where it
# comes back in GET /forms/{id}, and its longest allowed length.
FIELDS = {
    "invoice_number": (("invoice_number",), ("invoice_number",), 64),
    "items.0.description": (("items", 0, "description"), ("items", 0, "description"), 300),
    "items.0.serial_number": (("items", 0, "serial_number"), ("items", 0, "serial_number"), 64),
}


def put(body: dict, path: tuple, value) -> dict:
    body = copy.deepcopy(body)
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def get(body: dict, path: tuple):
    for step in path:
        body = body[step]
    return body


def send(world, body):
    return world.post("shop", "/api/v1/forms", body)


@pytest.mark.parametrize("field", FIELDS)
def test_hostile_text_is_stored_verbatim_or_refused_by_name(world, field, figures):
    request_path, response_path, longest = FIELDS[field]
    values = HOSTILE + ["x" * longest, "x" * (longest + 1)]
    stored = refused = 0
    for n, value in enumerate(values):
        body = form_body(item(serial_number="SN-1"), invoice=f"H-{field}-{n}")
        r = send(world, put(body, request_path, value))
        assert r.status_code in (201, 422), (value, r.status_code, r.get_data(as_text=True)[:300])
        if r.status_code == 422:
            refused += 1
            assert r.mimetype == "application/problem+json"
            assert list(r.get_json()["errors"]) == [field], (value, r.get_json())
            continue
        stored += 1
        form = world.get("shop", f"/api/v1/forms/{r.get_json()['id']}").get_json()
        assert get(form, response_path) == value
    # Only the value one past the limit is refused: the rest are ordinary
    # text to a database that binds parameters.
    assert (stored, refused) == (len(values) - 1, 1)
    assert len(world.get("shop", "/api/v1/forms?limit=100").get_json()["items"]) == stored
    figures(sent=len(values), stored_verbatim=stored, refused_422=refused, errors_5xx=0)


@pytest.mark.parametrize("value", SQL + SCRIPT + ["Chen🧳", "Ch\u202een", "", "C" * 101])
def test_a_travellers_name_accepts_only_what_a_passport_can_hold(world, value):
    # Names are printed in the machine-readable zone in Latin letters, so
    # anything else is refused by name rather than stored.
    r = send(world, form_body(traveller=traveller(last_name=value)))
    assert r.status_code == 422, r.get_json()
    assert list(r.get_json()["errors"]) == ["traveller.last_name"]


def test_names_with_apostrophes_hyphens_and_accents_are_kept(world):
    for last_name in ("O'Brien", "García-López", "Nguyễn"):
        form = world.issue("shop", traveller=traveller(last_name=last_name))
        assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["traveller"]["last_name"] == last_name


def test_unicode_that_no_database_can_store_is_refused_by_name(world):
    raw = json.dumps(form_body(invoice="INV-NUL"))
    for bad, name in (("INV\\u0000NUL", "NUL"), ("INV\\ud800", "a lone surrogate")):
        r = world.client.post("/api/v1/forms", data=raw.replace("INV-NUL", bad), headers={
            **world.auth("shop"), "Content-Type": "application/json"})
        assert r.status_code == 422, (name, r.status_code)
        assert list(r.get_json()["errors"]) == ["invoice_number"], name


def test_huge_arrays_are_refused_before_any_work(world, figures):
    # More lines than a form may have: a 422 naming the list.
    too_many = form_body(*[item() for _ in range(201)])
    r = send(world, too_many)
    assert (r.status_code, list(r.get_json()["errors"])) == (422, ["items"])
    # A body far past the size limit: 413 before it is parsed.
    enormous = form_body(*[item(description="x" * 300) for _ in range(10_000)])
    r = send(world, enormous)
    assert (r.status_code, r.mimetype) == (413, "application/problem+json")
    # Deeply nested JSON is a 400 or 422, not a crash of the parser.
    r = world.client.post("/api/v1/forms", data="[" * 100_000 + "]" * 100_000,
                          headers={**world.auth("shop"), "Content-Type": "application/json"})
    assert r.status_code in (400, 413, 422) and r.mimetype == "application/problem+json"
    assert world.get("shop", "/api/v1/forms").get_json()["items"] == []
    figures(sent=3, refused=3, errors_5xx=0)
