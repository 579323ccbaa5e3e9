"""One form: details, the status timeline from the audit trail, cancel,
"refund paid", and the print view."""
from __future__ import annotations

import re
from datetime import date

from portal_support import csrf_token, item


def _version(client, form_id: str) -> str:
    html = client.get(f"/portal/forms/{form_id}").get_data(as_text=True)
    return re.search(r'name="version" value="([^"]+)"', html).group(1)


def _timeline(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", t).strip() for t in re.findall(r'<span class="what">(.*?)</span>', html, re.S)]


def test_the_timeline_tells_the_form_s_story_from_the_audit_trail(shop, world):
    form = world.issue("shop", item(125000, category="watches", serial_number="SN-1"))
    world.scan("kiosk", form["qr_payload"])
    decided = world.post("officer", f"/api/v1/forms/{form['id']}/decision",
                         {"outcome": "validated", "lines": [{"line": 1, "present": True}]})
    assert decided.status_code == 200, decided.get_json()
    html = shop.get(f"/portal/forms/{form['id']}").get_data(as_text=True)
    assert _timeline(html) == [
        "Form issued",
        "Customs check required at AMS",
        "Scanned: sent to the customs desk",
        "Export validated",
    ]
    # Why customs checked the form is theirs: no rule, threshold or detail.
    for why in ("High value", "Watched goods", "1.000,00", "1,000.00", "above", "watches."):
        assert why not in html, why
    assert "Kiosk at AMS" in html and "<span class=\"who\">Customs" in html and "officer</span>" not in html
    assert "******" not in html and "•••••" in html  # the passport number is masked
    assert "<svg class=\"qr\"" in html


def test_cancel_while_issued_then_no_more(shop, world):
    form = world.issue()
    response = shop.post(f"/portal/forms/{form['id']}/cancel", data={
        "csrf_token": csrf_token(shop, f"/portal/forms/{form['id']}"), "version": _version(shop, form["id"])})
    assert response.status_code == 302
    page = shop.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Form {form['id']} is cancelled." in page
    assert "Cancel form</button>" not in page
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "cancelled"


def test_an_action_on_a_form_that_changed_meanwhile_is_not_carried_out(shop, world):
    form = world.issue()
    version = _version(shop, form["id"])
    world.scan("kiosk", form["qr_payload"])  # validated at the airport meanwhile
    response = shop.post(f"/portal/forms/{form['id']}/cancel", data={
        "csrf_token": csrf_token(shop, "/portal/forms"), "version": version})
    assert "The form changed since you opened it" in shop.get(response.headers["Location"]).get_data(as_text=True)
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "validated"


def test_refund_paid_is_recorded_once_and_never_above_the_refund_due(shop, world):
    form = world.issue()
    world.scan("kiosk", form["qr_payload"])
    page = shop.get(f"/portal/forms/{form['id']}").get_data(as_text=True)
    assert 'name="amount" type="text" value="18.90"' in page  # the refund due, as a suggestion
    token = csrf_token(shop, f"/portal/forms/{form['id']}")
    too_much = shop.post(f"/portal/forms/{form['id']}/refund", data={
        "csrf_token": token, "version": _version(shop, form["id"]), "amount": "21,01", "paid_on": date.today().isoformat()})
    assert too_much.status_code == 422
    assert "The refund cannot be more than the refund due for the validated goods (€18.90)." in \
        too_much.get_data(as_text=True)
    also_too_much = shop.post(f"/portal/forms/{form['id']}/refund", data={
        "csrf_token": token, "version": _version(shop, form["id"]), "amount": "18,91", "paid_on": date.today().isoformat()})
    assert also_too_much.status_code == 422
    future = shop.post(f"/portal/forms/{form['id']}/refund", data={
        "csrf_token": token, "version": _version(shop, form["id"]), "amount": "18.90", "paid_on": "2999-01-01"})
    assert "The payment date cannot be after today." in future.get_data(as_text=True)
    done = shop.post(f"/portal/forms/{form['id']}/refund", data={
        "csrf_token": token, "version": _version(shop, form["id"]), "amount": "18.90", "paid_on": date.today().isoformat()})
    assert done.status_code == 302
    page = shop.get(done.headers["Location"]).get_data(as_text=True)
    assert "Refund of €18.90 recorded." in page
    assert _timeline(page)[-1] == "Refund paid: €18.90"
    assert 'name="amount"' not in page  # only once
    api = world.get("shop", f"/api/v1/forms/{form['id']}").get_json()
    assert (api["status"], api["refunded_cents"]) == ("refunded", 1890)


def test_refund_paid_is_not_offered_before_validation(shop, world):
    form = world.issue()
    assert 'name="amount"' not in shop.get(f"/portal/forms/{form['id']}").get_data(as_text=True)
    response = shop.post(f"/portal/forms/{form['id']}/refund", data={
        "csrf_token": csrf_token(shop, "/portal/forms"), "version": _version(shop, form["id"]),
        "amount": "10", "paid_on": date.today().isoformat()})
    assert "Only a validated form can be marked as refunded." in shop.get(response.headers["Location"]).get_data(as_text=True)


def test_the_print_view_has_the_qr_code_deadline_totals_and_instructions_in_two_languages(shop, world):
    form = world.issue()
    html = shop.get(f"/portal/forms/{form['id']}/print").get_data(as_text=True)
    grouped = f"{form['id'][:2]} {form['id'][2:6]} {form['id'][6:]}"
    assert grouped in html
    assert form["export_deadline"] in html
    assert "last EU airport or port, before you check in your luggage" in html
    assert "离开欧盟前的最后一个机场或港口、托运行李之前" in html
    assert "EUR 18.90" in html and "121.00" in html
    assert 'href="/portal/static/print-a4.css"' in html
    assert 'href="/portal/static/print-receipt.css"' in shop.get(
        f"/portal/forms/{form['id']}/print?layout=receipt").get_data(as_text=True)
    a4 = shop.get("/portal/static/print-a4.css")
    assert "size: A4" in a4.get_data(as_text=True)
    a4.close()
    receipt = shop.get("/portal/static/print-receipt.css")
    assert "size: 80mm" in receipt.get_data(as_text=True)
    receipt.close()


def test_the_qr_code_on_the_page_carries_the_signed_payload(shop, world):
    import io

    import numpy as np
    import zxingcpp
    from PIL import Image
    from api.portal.qr import qr_svg

    form = world.issue()
    svg = str(qr_svg(form["qr_payload"], "test"))
    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))
    # Rasterise the path's unit squares at 4 pixels per module.
    pixels = np.full((size * 4, size * 4), 255, dtype=np.uint8)
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)", svg):
        x, y, w = int(x), int(y), int(w)
        pixels[y * 4:(y + 1) * 4, x * 4:(x + w) * 4] = 0
    # QR codes only: with every format on, a run of modules now and then
    # also reads as a short linear barcode.
    decoded = zxingcpp.read_barcodes(pixels, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [c.text for c in decoded] == [form["qr_payload"]]
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")  # also a valid image
    assert png.tell() > 0
