"""The app built against the live API (the fixture the end-to-end tests use):
signing in reaches the server, with the passport in the request body and
nothing personal in any URL; a traveller sent to the desk shows the officer
a fresh desk pass from "My forms"."""
from __future__ import annotations

import numpy as np
import zxingcpp
from PIL import Image

from tests.api.traveller_support import app_world, coat, watch  # noqa: F401
from tests.traveller.conftest import drawn_qr_png
from tests.traveller.samples import PERSONAL


def test_signing_in_asks_the_live_api_for_a_session_with_nothing_personal_in_a_url(
        start_traveller, traveller_api, tmp_path):
    phone = start_traveller(traveller_api.url, tmp_path / "phone")
    phone.sign_in()
    assert phone.current == "forms" and phone.app.wallet.passport.number == "E12345678"
    assert ("POST", "/api/v1/traveller/session", "") in traveller_api.requests
    assert not phone.app.notice.startswith("No connection")  # it was reached
    for method, path, query in traveller_api.requests:
        for secret in PERSONAL:
            assert secret.decode() not in path + "?" + query, (method, path)


def test_a_traveller_sent_to_the_desk_shows_the_officer_a_fresh_desk_pass_from_my_forms(
        app_world, app, traveller_api, start_traveller, tmp_path):
    watch_form = app_world.issue_for(watch())
    # Validated on another visit; the answer's desk pass is long gone.
    sent = app_world.phone().signed_in().verdicts([watch_form["id"]])
    assert sent["items"][0]["verdict"] == "check_required"

    phone = start_traveller(traveller_api.url, tmp_path / "phone")
    phone.sign_in()
    [form] = phone.app.wallet.forms
    assert (form.id, form.status) == (watch_form["id"], "check_required")
    button = phone.screen("forms").ids.desk_pass
    assert button.opacity == 1 and not button.disabled
    phone.tap(button)
    phone.wait(lambda: phone.current == "result", "the desk pass")
    [card] = phone.screen().cards()
    assert card.title == "Show this to the officer" and "Departures 2" in card.body
    assert ("POST", "/api/v1/traveller/desk-pass", "") in traveller_api.requests

    qr = drawn_qr_png(phone.screen().ids.desk_pass.texture, tmp_path / "again.png")
    [code] = zxingcpp.read_barcodes(np.array(Image.open(qr).convert("L")),
                                     formats=zxingcpp.BarcodeFormat.QRCode)
    r = app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": code.text})
    assert r.status_code == 200, r.get_json()
    assert [(f["id"], f["check"]["status"]) for f in r.get_json()["items"]] == [(watch_form["id"], "pending")]


def test_without_a_form_waiting_for_the_desk_there_is_no_desk_pass_to_show(
        app_world, traveller_api, start_traveller, tmp_path):
    app_world.issue_for(coat())
    phone = start_traveller(traveller_api.url, tmp_path / "phone")
    phone.sign_in()
    button = phone.screen("forms").ids.desk_pass
    assert button.opacity == 0 and button.disabled and button.height == 0
