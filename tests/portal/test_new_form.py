"""The new-form page without a browser: what the server does with the post."""
from __future__ import annotations

import re
from datetime import date, timedelta

from portal_support import csrf_token

from shared import rules


def _post(client, lines=None, *, op="issue", **fields):
    data = {
        "csrf_token": csrf_token(client, "/portal/forms/new"),
        "op": op,
        "invoice_number": "PAGE-1",
        "purchase_date": date.today().isoformat(),
        "payment_method": "card",
        "traveller.first_name": "Mei",
        "traveller.last_name": "Chen",
        "traveller.passport_number": "e1234 5678",
        "traveller.passport_country": "CN",
        "traveller.nationality": "CN",
        "traveller.residence_country": "CN",
        "traveller.date_of_birth": "1988-03-14",
        "traveller.email": "",
    }
    data.update(fields)
    lines = lines if lines is not None else [("Wool coat", "clothing", "1", "121,00", "21", "")]
    for n, (description, category, quantity, price, rate, serial) in enumerate(lines):
        data.update({f"items.{n}.description": description, f"items.{n}.category": category,
                     f"items.{n}.quantity": quantity, f"items.{n}.price": price,
                     f"items.{n}.vat_rate": rate, f"items.{n}.serial_number": serial})
    return client.post("/portal/forms/new", data=data)


def _error(html: str, field: str) -> str:
    """The error shown next to ``field`` (empty if none)."""
    match = re.search(rf'<p class="field-error" id="err-{re.escape(field)}"\s*>(.*?)</p>', html, re.S)
    return re.sub(r"<[^>]+>", " ", match.group(1)).strip() if match else ""


def test_a_form_issued_on_the_page_has_the_server_s_totals_and_opens_the_print_view(shop, world):
    response = _post(shop, [
        ("Silk scarf", "clothing", "2", "49,95", "21", ""),
        ("Cookbook", "books", "1", "35", "9", ""),
        ("Chocolate box", "food", "3", "12.5", "9", ""),
        ("", "", "1", "", "21", ""),  # an empty line is ignored
    ])
    assert response.status_code == 302
    form_id = response.headers["Location"].split("/")[3]
    assert response.headers["Location"] == f"/portal/forms/{form_id}/print"
    form = world.get("shop", f"/api/v1/forms/{form_id}").get_json()
    expected = rules.compute_totals([rules.Line(2, 4995, 2100, "clothing"), rules.Line(1, 3500, 900, "books"),
                                     rules.Line(3, 1250, 900, "food")], fee_bp=1000)
    assert (form["total_cents"], form["vat_cents"], form["fee_cents"], form["refund_cents"]) == (
        expected.total_cents, expected.vat_cents, expected.fee_cents, expected.refund_cents)
    assert [i["unit_price_cents"] for i in form["items"]] == [4995, 3500, 1250]
    assert form["traveller"]["passport_number"] == "E12345678"
    events = world.get("shop", f"/api/v1/forms/{form_id}/events").get_json()["items"]
    assert [e["type"] for e in events] == ["form.issued"]
    assert events[0]["actor"].startswith("user:")
    printed = shop.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Form {form_id} issued" in printed


def test_an_eu_resident_is_refused_with_the_message_next_to_the_residence(shop):
    response = _post(shop, **{"traveller.residence_country": "DE"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert _error(html, "traveller-residence_country") == (
        "Germany is in the EU: only travellers who live outside the EU can get a VAT refund.")
    assert 'id="traveller-residence_country"' in html and 'aria-invalid="true"' in html
    assert 'href="#traveller-residence_country"' in html  # in the summary, linked to the field


def test_missing_and_malformed_fields_are_named_next_to_each_field(shop):
    response = _post(shop, [("Scarf", "clothing", "two", "12,345", "21", ""), ("", "clothing", "1", "60", "21", "")],
                     **{"traveller.first_name": "", "traveller.last_name": "Чен", "traveller.date_of_birth": "14-03-1988",
                        "traveller.email": "not-an-address"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error(html, "traveller-first_name") == "Fill this in."
    assert _error(html, "traveller-last_name") == "Use the Latin-script name as printed in the passport."
    assert _error(html, "traveller-date_of_birth") == "Enter a date like 2026-03-14."
    assert _error(html, "traveller-email") == "Enter an e-mail address like name@example.com."
    assert _error(html, "items-0-quantity") == "Enter a whole number."
    assert _error(html, "items-0-price") == "Enter an amount in euros, like 12.50."
    assert _error(html, "items-1-description") == "Fill this in."
    # What the clerk typed is kept.
    assert 'value="two"' in html and 'value="12,345"' in html and 'value="Чен"' in html


def test_the_tax_free_rules_are_explained_next_to_the_field(shop):
    response = _post(shop, [("Haircut", "services", "1", "30", "21", "")],
                     purchase_date=(date.today() + timedelta(days=2)).isoformat())
    html = response.get_data(as_text=True)
    assert _error(html, "purchase_date") == "The purchase date cannot be after today."
    assert _error(html, "items-0-category") == "These goods cannot be sold tax-free."  # services
    response = _post(shop, [("Postcard", "other", "1", "2,50", "21", "")])
    assert _error(response.get_data(as_text=True), "items") == "The total €2.50 is under the minimum of €50.00 per form."


def test_a_second_form_for_the_same_invoice_is_refused_next_to_the_invoice_number(shop):
    assert _post(shop).status_code == 302
    response = _post(shop)
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "invoice_number") == "This invoice already has a tax-free form."


def test_lines_are_added_and_removed_without_javascript(shop):
    lines = [("Scarf", "clothing", "1", "60", "21", ""), ("Book", "books", "1", "20", "9", "")]
    added = _post(shop, lines, op="add_line").get_data(as_text=True)
    assert 'name="items.2.description"' in added and 'name="items.3.description"' not in added
    removed = _post(shop, lines, op="remove:0").get_data(as_text=True)
    assert 'value="Book"' in removed and 'value="Scarf"' not in removed
    assert 'name="items.0.description" value="Book"' in removed


def test_the_page_shows_the_server_s_totals_before_javascript_runs(shop):
    html = _post(shop, [("Scarf", "clothing", "2", "49,95", "21", "")], op="add_line").get_data(as_text=True)
    assert 'id="total-amount" data-cents="9990"' in html
    assert 'id="vat-amount" data-cents="1734"' in html


def test_a_retailer_without_an_intermediary_refunds_all_the_vat(client, world):
    from portal_support import portal_login

    portal_login(client, "books")
    response = _post(client, [("Atlas", "books", "1", "109,00", "9", "")])
    form_id = response.headers["Location"].split("/")[3]
    form = world.get("books", f"/api/v1/forms/{form_id}").get_json()
    assert form["fee_cents"] == 0 and form["refund_cents"] == form["vat_cents"] == 900
    assert "Fee of" not in client.get("/portal/forms/new").get_data(as_text=True)


def test_the_new_form_page_in_dutch(shop):
    html = shop.get("/portal/forms/new?lang=nl").get_data(as_text=True)
    assert '<html lang="nl"' in html
    assert "Nieuw tax-free formulier" in html
    assert ">Duitsland</option>" in html  # country names from pycountry's catalogs
    response = _post(shop, **{"traveller.residence_country": "BE"})
    assert _error(response.get_data(as_text=True), "traveller-residence_country") == (
        "België ligt in de EU: alleen reizigers die buiten de EU wonen, krijgen btw terug.")
