"""POST /status/{form_id} with the last name: a traveller checks a form
without logging in, and learns nothing that is not theirs to know."""
from __future__ import annotations

from datetime import date

import pytest

from tests.builders import item, traveller

PAY = {"amount_cents": 1000, "paid_at": "2026-12-01T10:00:00+00:00"}


def lookup(client, form_id, last_name, address="198.51.100.7"):
    return client.post(f"/api/v1/status/{form_id}", json={"last_name": last_name},
                       environ_base={"REMOTE_ADDR": address})


def test_a_traveller_sees_status_deadline_and_next_step_and_no_personal_data(world):
    form = world.issue("shop", purchase_date=date(2026, 11, 26))

    r = lookup(world.client, form["id"], "Chen")

    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {
        "form_id": form["id"],
        "status": "issued",
        "export_deadline": "2027-02-28",
        "next_step": "Before you check in your luggage, scan this form's QR code at a customs kiosk at "
                     "the last EU airport or port you leave from, no later than 28 February 2027.",
        "exit_point": None,
        "validated_at": None,
        "refund_cents": form["refund_cents"],
        "refunded_at": None,
        "paid_by": "Refunds Inc",
    }
    text = r.get_data(as_text=True)
    for personal in ("Mei", "Chen", "E12345678", "1988-03-14", "INV-"):
        assert personal not in text


@pytest.mark.parametrize("typed", ["chen", "CHEN", " Chen ", "Chén", "CHÊN"])
def test_the_last_name_matches_whatever_the_case_and_accents(world, typed):
    form = world.issue("shop")
    assert lookup(world.client, form["id"], typed).status_code == 200


@pytest.mark.parametrize("on_form, typed", [
    ("Müller", "MULLER"), ("O'Brien", "obrien"), ("Smith-Jones", "Smith Jones"), ("Løkke", "lokke"),
    ("Łukasz", "lukasz"), ("Straße", "STRASSE"),
])
def test_names_are_compared_as_travellers_type_them(world, on_form, typed):
    form = world.issue("shop", traveller=traveller(last_name=on_form))
    assert lookup(world.client, form["id"], typed).status_code == 200


def test_a_wrong_name_and_an_unknown_form_get_the_same_404(world):
    form = world.issue("shop")
    unknown = "NL" + "2" * 8

    wrong_name = lookup(world.client, form["id"], "Smith")
    no_form = lookup(world.client, unknown, "Chen")

    assert wrong_name.status_code == no_form.status_code == 404
    assert wrong_name.mimetype == no_form.mimetype == "application/problem+json"
    same = lambda r: {k: v for k, v in r.get_json().items() if k != "instance"}  # noqa: E731
    assert same(wrong_name) == same(no_form) == {
        "type": "about:blank", "title": "Not Found", "status": 404, "code": "form_not_found",
        "detail": "No form with this number and last name. Check both against your form."}
    assert lookup(world.client, form["id"], "").status_code == 422
    assert world.client.post(f"/api/v1/status/{form['id']}", json={}).status_code == 422


def test_the_last_name_never_travels_in_the_address(world):
    # Addresses end up in access logs, proxies and browser histories: the
    # old GET with ?last_name= is refused with a problem, not answered.
    form = world.issue("shop")
    r = world.client.get(f"/api/v1/status/{form['id']}", query_string={"last_name": "Chen"})
    assert (r.status_code, r.mimetype) == (405, "application/problem+json")
    assert "POST" in r.headers["Allow"]
    spec = world.client.get("/openapi.json").get_json()
    path = spec["paths"]["/api/v1/status/{form_id}"]
    assert set(path) == {"post", "parameters"}
    assert [p["in"] for p in path["parameters"] + path["post"].get("parameters", [])] == ["path"]


def test_a_form_number_is_typed_forgivingly(world):
    form = world.issue("shop")
    typed = f"{form['id'][:2].lower()} {form['id'][2:6]}-{form['id'][6:].lower()}"
    assert lookup(world.client, typed, "Chen").get_json()["form_id"] == form["id"]


def test_each_status_has_its_own_next_step(world):
    validated = world.issue("shop")
    world.scan("kiosk", validated["qr_payload"])
    refunded = world.issue("books", item(6500, vat_rate=9, category="books"))
    world.scan("kiosk", refunded["qr_payload"])
    world.post("books", f"/api/v1/forms/{refunded['id']}/refund", {**PAY, "amount_cents": 537})
    desk = world.issue("shop", item(60500, category="watches"))
    world.scan("kiosk", desk["qr_payload"])
    rejected = world.issue("shop", item(60500, category="watches"))
    world.scan("kiosk", rejected["qr_payload"])
    world.post("officer", f"/api/v1/forms/{rejected['id']}/decision",
               {"outcome": "rejected", "reason_code": "goods_not_presented"})
    cancelled = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel")

    def seen(form):
        body = lookup(world.client, form["id"], "Chen").get_json()
        return body["status"], body["next_step"], body["refund_cents"], body["exit_point"], body["paid_by"]

    assert seen(validated) == ("validated", "Nothing more to do: the export is validated. Refunds Inc pays "
                               "your refund.", validated["refund_cents"], "AMS", "Refunds Inc")
    assert seen(refunded) == ("refunded", "Nothing more to do: Bookshop has paid your refund.", 537, "AMS",
                              "Bookshop")
    assert seen(desk) == ("check_required", "Go to the customs desk with your goods, your passport and this "
                          "form before you check in your luggage.", desk["refund_cents"], "AMS", "Refunds Inc")
    assert seen(rejected) == ("rejected", "Customs did not validate the export, so no VAT is refunded. "
                              "Ask Refunds Inc if you have questions.", 0, "AMS", "Refunds Inc")
    assert seen(cancelled) == ("cancelled", "The shop cancelled this form. Ask the shop for a new one if "
                               "you still need it.", 0, None, "Refunds Inc")


def test_lookups_are_limited_per_address(app, world):
    app.config["STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE"] = 3
    form = world.issue("shop")
    assert [lookup(world.client, form["id"], name).status_code for name in ("Chen", "Wrong", "Chen")] == [
        200, 404, 200]

    r = lookup(world.client, form["id"], "Chen")

    assert (r.status_code, r.get_json()["code"]) == (429, "too_many_requests")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert lookup(world.client, form["id"], "Chen", address="198.51.100.8").status_code == 200


def test_guessing_one_forms_name_from_many_addresses_is_limited_per_form(app, world):
    app.config["STATUS_LOOKUPS_PER_FORM_PER_HOUR"] = 5
    form = world.issue("shop")
    other = world.issue("shop")
    guesses = [lookup(world.client, form["id"], f"Guess{n}", address=f"203.0.113.{n}").status_code
               for n in range(6)]
    assert guesses == [404] * 5 + [429]
    assert lookup(world.client, other["id"], "Chen").status_code == 200


def test_the_status_lookup_needs_no_login_and_is_documented_as_public(client):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/status/{form_id}"]["post"]
    assert operation["security"] == []
    assert {"200", "404", "429"} <= set(operation["responses"])


def test_behind_a_trusted_proxy_each_traveller_has_their_own_limit(app, world, database_url):
    # Behind nginx every request comes from the proxy's address: the limit
    # must follow the client address the proxy forwards, not the proxy.
    from api import create_app

    behind_proxy = create_app({"TESTING": True, "DATABASE_URL": database_url, "TRUSTED_PROXIES": 1,
                               "STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE": 2})
    client = behind_proxy.test_client()
    form = world.issue("shop")

    def via_proxy(traveller_address):
        return client.post(f"/api/v1/status/{form['id']}", json={"last_name": "Chen"},
                          environ_base={"REMOTE_ADDR": "10.0.0.5"},
                          headers={"X-Forwarded-For": traveller_address}).status_code

    assert [via_proxy("198.51.100.20") for _ in range(3)] == [200, 200, 429]
    assert via_proxy("198.51.100.21") == 200
    behind_proxy.extensions["db_engine"].dispose()


def test_without_a_proxy_a_forged_forwarded_for_does_not_escape_the_limit(app, world):
    app.config["STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE"] = 2
    form = world.issue("shop")
    statuses = [world.client.post(f"/api/v1/status/{form['id']}", json={"last_name": "Chen"},
                                 environ_base={"REMOTE_ADDR": "198.51.100.30"},
                                 headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(3)]
    assert statuses == [200, 200, 429]
