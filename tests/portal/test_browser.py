"""The pages in a real browser: headless Chromium against the app on a
real HTTP server (``live_server``), with the JavaScript running."""
from __future__ import annotations

import io

import numpy as np
import zxingcpp
from PIL import Image

from shared import rules

from portal_support import browser_login, item


def _decode_qr(png: bytes) -> str:
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    codes = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(codes) == 1, f"expected one code, found {len(codes)}"
    return codes[0].text


UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(field => field.labels.length === 0).map(field => field.name || field.id)"""


def _unlabelled(page) -> list[str]:
    """Inputs a screen reader could not name."""
    return page.evaluate(UNLABELLED)


def _type_line(page, n: int, description: str, category: str, quantity: str, price: str, rate: str) -> None:
    """Fill line ``n`` with the keyboard only, starting in its description."""
    assert page.evaluate("document.activeElement.id") == f"items-{n}-description"
    page.keyboard.type(description)
    page.keyboard.press("Tab")
    page.keyboard.type(category)  # a closed <select> picks the option typed
    page.keyboard.press("Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type(quantity)
    page.keyboard.press("Tab")
    page.keyboard.type(price)
    page.keyboard.press("Tab")
    page.keyboard.type(rate)


def test_clerk_issues_a_three_line_form_prints_it_and_the_printed_qr_scans_at_the_kiosk(
        page, live_server, world):
    browser_login(page, live_server, "shop")
    page.goto(f"{live_server}/portal/forms/new")
    assert _unlabelled(page) == []
    page.fill("#invoice_number", "TILL-0001")
    page.fill("#traveller-first_name", "Mei")
    page.fill("#traveller-last_name", "Chen")
    page.fill("#traveller-passport_number", "e 1234 5678")
    page.select_option("#traveller-passport_country", "CN")
    # Nationality and residence follow the passport while still empty.
    assert page.input_value("#traveller-nationality") == "CN"
    assert page.input_value("#traveller-residence_country") == "CN"
    page.fill("#traveller-date_of_birth", "1988-03-14")

    page.focus("#items-0-description")
    _type_line(page, 0, "Silk scarf", "Clothing", "2", "49,95", "21")
    for n, line in ((1, ("Cookbook", "Books", "1", "35.00", "9")), (2, ("Chocolate box", "Food", "3", "12.50", "9"))):
        page.focus("#add-line")
        page.keyboard.press("Enter")  # adds a line and moves the focus into it
        _type_line(page, n, *line)
    assert _unlabelled(page) == []  # the added lines too
    # A line added by mistake is removed with the keyboard; the focus stays
    # in the table.
    page.focus("#add-line")
    page.keyboard.press("Enter")
    page.focus("button.remove[value='remove:3']")
    page.keyboard.press("Enter")
    assert page.locator("#lines tr.line").count() == 3
    assert page.evaluate("document.activeElement.id") == "items-2-description"

    # The page's totals, computed live, are the server's (world: the shop's
    # intermediary keeps 10 % of the VAT).
    expected = rules.compute_totals([
        rules.Line(2, 4995, 2100, "clothing"), rules.Line(1, 3500, 900, "books"), rules.Line(3, 1250, 900, "food"),
    ], fee_bp=1000)
    shown = {name: int(page.get_attribute(f"#{name}-amount", "data-cents")) for name in ("total", "vat", "fee", "refund")}
    assert shown == {"total": expected.total_cents, "vat": expected.vat_cents,
                     "fee": expected.fee_cents, "refund": expected.refund_cents}
    assert page.inner_text("#total-amount") == "€172.40"
    assert page.inner_text("#refund-amount") == "€21.00"
    assert page.inner_text("#items-2-quantity >> xpath=../../td[contains(@class,'col-total')]") == "€37.50"
    assert page.is_hidden("#minimum-note")

    # Enter in a field issues the form (not "remove line 1"), and the print
    # view opens.
    with page.expect_navigation():
        page.press("#items-2-price", "Enter")
    assert "/print" in page.url
    form_id = page.get_attribute("[data-form-id]", "data-form-id")
    form = world.get("shop", f"/api/v1/forms/{form_id}").get_json()
    assert [line["description"] for line in form["items"]] == ["Silk scarf", "Cookbook", "Chocolate box"]
    assert (form["total_cents"], form["vat_cents"], form["refund_cents"]) == (
        expected.total_cents, expected.vat_cents, expected.refund_cents)
    assert form["traveller"]["passport_number"] == "E12345678"
    sheet = page.inner_text("#sheet")
    assert form["export_deadline"] in sheet
    assert "before you check in your luggage" in sheet
    assert "托运行李之前" in sheet

    payload = _decode_qr(page.locator("#form-qr svg").screenshot())
    assert payload == form["qr_payload"]
    scan = world.scan("kiosk", payload)
    assert scan.status_code == 200, scan.get_json()
    assert scan.get_json()["verdict"] == "validated"
    assert scan.get_json()["form_id"] == form_id


def test_a_forged_post_without_the_csrf_token_is_refused(page, live_server, world):
    form = world.issue()
    browser_login(page, live_server, "shop")
    page.goto(f"{live_server}/portal/forms/{form['id']}")
    version = page.get_attribute("input[name=version]", "value")
    # The browser's cookie goes along, as it would with a forged form post.
    forged = page.request.post(f"{live_server}/portal/forms/{form['id']}/cancel", form={"version": version})
    assert forged.status == 400
    assert "security token" in forged.text()
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "issued"
    forged.dispose()

    # The page's own form, token included, does cancel (after the confirmation).
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("button.danger")
    assert "is cancelled" in page.inner_text("main")
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "cancelled"


def test_the_status_page_and_the_dashboard_render_with_data(browser, live_server, world):
    validated = world.issue()
    watch = world.issue("shop", item(125000, category="watches", serial_number="SN-1"))
    cancelled = world.issue()
    world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel")
    assert world.scan("kiosk", validated["qr_payload"]).get_json()["verdict"] == "validated"
    assert world.scan("kiosk", watch["qr_payload"]).get_json()["verdict"] == "check_required"
    assert world.scan("kiosk", cancelled["qr_payload"]).get_json()["verdict"] == "refused"

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = phone.new_page()
    page.goto(f"{live_server}/status")
    assert page.get_attribute("html", "lang") == "zh-Hans"  # the browser's language
    assert _unlabelled(page) == []
    page.click("a[hreflang=en]")
    page.fill("#form_id", validated["id"].lower())
    page.fill("#last_name", "chen")
    with page.expect_navigation():
        page.click("button[type=submit]")
    result = page.inner_text("main")
    assert "Export validated" in result
    assert "Your refund will be paid by Refunds Inc." in result
    for personal in ("Mei", "Chen", "E12345678", "Wool coat"):
        assert personal not in page.content()
    phone.close()

    desktop = browser.new_context(viewport={"width": 1280, "height": 900})
    page = desktop.new_page()
    browser_login(page, live_server, "officer")
    assert page.url.endswith("/dashboard")
    assert _unlabelled(page) == []
    kpis = {name: page.inner_text(f"#kpi-{name}") for name in ("scans", "validated", "desk", "refused", "queue")}
    assert kpis == {"scans": "3", "validated": "1", "desk": "1", "refused": "1", "queue": "1"}
    ams = page.locator("tr[data-exit-point=AMS] td")
    assert ams.all_inner_texts()[:5] == ["3", "1", "1", "1", "1"]
    assert page.locator("svg.chart rect.bar").count() >= 5
    assert "Watched goods" in page.inner_text(".rule-list")
    desktop.close()


def test_a_name_that_is_markup_renders_as_text_on_every_page(page, live_server, world, app):
    from api import database
    from api.auth import Principal
    from api.models import User, utcnow
    from api.services import forms
    from sqlalchemy import select

    from api.portal.retailer import _issuer

    script = "<script>alert(1)</script>"
    with app.test_request_context():
        session = database.session()
        user = session.scalar(select(User).where(User.username == "shop"))
        clerk = Principal("user", str(user.id), "retailer", retailer_id=user.retailer_id)
        # The API's schema refuses such a name; the pages must not rely on it.
        body = {"invoice_number": '"><img src=x onerror=alert(2)>', "purchase_date": utcnow().date(),
                "traveller": {"first_name": "<b>Mei</b>", "last_name": script, "passport_number": "E1234567",
                              "passport_country": "CN", "nationality": "CN", "residence_country": "CN",
                              "date_of_birth": utcnow().date().replace(year=1990)},
                "items": [{"description": script, "quantity": 1, "unit_price_cents": 9900, "vat_rate_bp": 2100,
                           "category": "clothing", "serial_number": "<i>SN</i>"}]}
        form = forms.issue(session, clerk, body, _issuer(), utcnow())
        session.commit()
        form_id = form.id
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    browser_login(page, live_server, "shop")
    for path in ("/portal/forms", f"/portal/forms?q={script}", f"/portal/forms/{form_id}",
                 f"/portal/forms/{form_id}/print", f"/portal/forms/{form_id}/print?layout=receipt"):
        page.goto(live_server + path)
        text = page.inner_text("body")
        assert script in text, path
        assert page.locator("img").count() == 0, path
        assert page.locator("script:not([src])").count() == 0, path
    assert "<b>Mei</b>" in page.inner_text("body")
    csv = page.request.get(f"{live_server}/portal/forms.csv")
    assert script in csv.text()
    csv.dispose()
    assert dialogs == []
