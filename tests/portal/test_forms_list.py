"""The forms list: filters, search, pagination, CSV; each shop sees its own."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from portal_support import csrf_token, item, traveller

TODAY = date.today()


def _ids(html: str) -> list[str]:
    return re.findall(r'<a href="/portal/forms/([A-Z0-9]{10})" class="mono">', html)


def search(shop, text: str, **filters) -> str:
    """The filter form sent as the page sends it; the list it leads to."""
    data = {"csrf_token": csrf_token(shop, "/portal/forms"), "q": text, **filters}
    response = shop.post("/portal/forms", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert text not in response.headers["Location"]
    return shop.get(response.headers["Location"]).get_data(as_text=True)


def test_filters_by_status_and_purchase_dates(shop, world):
    old = world.issue(purchase_date=TODAY - timedelta(days=20))
    recent = world.issue(purchase_date=TODAY - timedelta(days=2))
    cancelled = world.issue(purchase_date=TODAY - timedelta(days=1))
    world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel")
    assert set(_ids(shop.get("/portal/forms").get_data(as_text=True))) == {old["id"], recent["id"], cancelled["id"]}
    assert _ids(shop.get("/portal/forms?status=cancelled").get_data(as_text=True)) == [cancelled["id"]]
    window = f"/portal/forms?from={(TODAY - timedelta(days=3)).isoformat()}&to={(TODAY - timedelta(days=2)).isoformat()}"
    assert _ids(shop.get(window).get_data(as_text=True)) == [recent["id"]]
    html = shop.get("/portal/forms?from=yesterday").get_data(as_text=True)
    assert "Enter a date like 2026-03-14." in html and len(_ids(html)) == 3


def test_search_by_invoice_number_or_last_name_in_any_case(shop, world):
    smith = world.issue(invoice="INV-SMITH-7", traveller=traveller(last_name="Smith"))
    chen = world.issue(invoice="INV-0042")
    percent = world.issue(invoice="100%_OFF")
    assert _ids(search(shop, "smi")) == [smith["id"]]
    assert _ids(search(shop, "inv-0042")) == [chen["id"]]
    assert _ids(search(shop, "%_")) == [percent["id"]]  # no wildcards
    assert _ids(search(shop, chen["id"].lower())) == [chen["id"]]


def test_the_search_text_never_travels_in_an_address(shop, world):
    """A last name in an address stays in the browser's history, proxies'
    logs and Referer headers: the search is kept in the session."""
    smiths = [world.issue(traveller=traveller(last_name="Smithson"))["id"] for _ in range(26)]
    world.issue()
    data = {"csrf_token": csrf_token(shop, "/portal/forms"), "q": "smithson", "status": "issued"}
    response = shop.post("/portal/forms", data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/portal/forms?status=issued"
    first = shop.get(response.headers["Location"]).get_data(as_text=True)
    assert "26 forms" in first and 'value="smithson"' in first
    # Pages and the CSV keep the search without naming it.
    links = re.findall(r'href="(/portal/forms[^"]*)"', first)
    assert 'href="/portal/forms?status=issued&amp;page=2"' in first
    assert links and not [link for link in links if "mithson" in link.lower() or "q=" in link]
    second = shop.get("/portal/forms?status=issued&page=2").get_data(as_text=True)
    assert set(_ids(first) + _ids(second)) == set(smiths)
    rows = list(csv.DictReader(io.StringIO(shop.get("/portal/forms.csv").get_data().decode("utf-8-sig"))))
    assert sorted(r["form_id"] for r in rows) == sorted(smiths)
    # A search typed into an address is taken out of it, and still applied.
    moved = shop.get("/portal/forms?q=nobody-here&status=issued")
    assert moved.status_code == 303 and moved.headers["Location"] == "/portal/forms?status=issued"
    assert "0 forms" in shop.get(moved.headers["Location"]).get_data(as_text=True)
    # Clear forgets it.
    cleared = shop.get("/portal/forms?clear=1")
    assert cleared.status_code == 303 and cleared.headers["Location"] == "/portal/forms"
    assert "27 forms" in shop.get("/portal/forms").get_data(as_text=True)


def test_the_search_needs_the_pages_csrf_token(shop, world):
    world.issue(traveller=traveller(last_name="Smith"))
    response = shop.post("/portal/forms", data={"q": "nobody"})
    assert response.status_code == 400
    assert "1 forms" in shop.get("/portal/forms").get_data(as_text=True)


def test_pages_of_25_newest_first_and_links_keep_the_filters(shop, world):
    issued = [world.issue()["id"] for _ in range(27)]
    first = shop.get("/portal/forms?status=issued").get_data(as_text=True)
    assert "27 forms" in first and "Page 1 of 2" in first
    assert len(_ids(first)) == 25
    assert 'href="/portal/forms?status=issued&amp;page=2"' in first
    second = shop.get("/portal/forms?status=issued&page=2").get_data(as_text=True)
    assert len(_ids(second)) == 2
    assert set(_ids(first) + _ids(second)) == set(issued)
    assert _ids(shop.get("/portal/forms?page=999").get_data(as_text=True)) == _ids(second)


def test_a_shop_sees_only_its_own_forms(client, world):
    from portal_support import portal_login

    theirs = world.issue("shop")
    mine = world.issue("books", item(10900, vat_rate=9, category="books"))
    portal_login(client, "books")
    assert _ids(client.get("/portal/forms").get_data(as_text=True)) == [mine["id"]]
    assert client.get(f"/portal/forms/{theirs['id']}").status_code == 404
    assert client.get(f"/portal/forms/{theirs['id']}/print").status_code == 404
    rows = list(csv.reader(io.StringIO(client.get("/portal/forms.csv").get_data(as_text=True))))
    assert [r[0] for r in rows[1:]] == [mine["id"]]


def test_csv_export_follows_the_filters_masks_passports_and_defuses_formulas(shop, world):
    world.issue(invoice="=HYPERLINK(\"http://evil.example\")", traveller=traveller(last_name="Smith"))
    kept = world.issue(invoice="INV-KEEP")
    search(shop, "inv-keep")
    response = shop.get("/portal/forms.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="tax-free-forms-')
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert len(rows) == 1
    row = rows[0]
    assert row["form_id"] == kept["id"] and row["status"] == "issued"
    assert row["total_eur"] == "121.00" and row["vat_eur"] == "21.00" and row["refund_eur"] == "18.90"
    assert row["passport_number"] == "******678" and row["last_name"] == "Chen"
    shop.get("/portal/forms?clear=1")
    everything = shop.get("/portal/forms.csv").get_data().decode("utf-8-sig")
    assert "'=HYPERLINK" in everything
