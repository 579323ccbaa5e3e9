"""The traveller's app and the officer's handheld, both real (Kivy,
offscreen), against the live API on 127.0.0.1, from the shop's till to the
shop's webhook receiver.

The shop issues a coat and a watch to Mei Chen. On her phone she types her
passport and sees both forms; she scans her boarding pass (a PDF417 image
through the app's camera path); "Validate now" stays off until the phone
stands in Schiphol's zone with a good fix and hears the post opposite the
desk; then the coat is validated (green, with its reference) and the watch
must go to the desk (amber, with the QR code to show). The officer's
handheld reads that QR code as the phone drew it, finds the watch and
validates it. The shop hears of each status change exactly once, signed.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import numpy as np
import zxingcpp
from PIL import Image

from api.services.traveller import reference
from shared import scanning
from tests.api.test_webhooks import Clock, Receiver, register, run_worker, verified
from tests.api.traveller_support import IN_AMS, OUTSIDE_AMS, app_world, coat, watch  # noqa: F401
from tests.officer.conftest import Handheld
from tests.traveller.conftest import drawn_qr_png
from traveller_app import trip as trips
from traveller_app.presence import SimulatedPresence

POST = "AMS-D2-01"  # the sensor post opposite Schiphol's desk, made by app_world with its secret


def boarding_pass_today() -> str:
    """Mei Chen's boarding pass (IATA BCBP) for today's flight Amsterdam -
    Beijing, today by Schiphol's calendar."""
    day = trips.local_today().timetuple().tm_yday
    return f"M1CHEN/MEI            EXYZ789 AMSPEKKL 0897 {day:03d}Y023C0042 100"


def pdf417_png(text: str, path):
    """The bar code as an airline prints it: PDF417, written by zxing-cpp."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.PDF417)
    Image.fromarray(np.array(barcode.to_image(scale=3))).save(path)
    return path


def type_passport(phone) -> None:
    """Mei Chen types her passport field by field and presses Continue."""
    phone.go("passport")
    screen = phone.screen()
    phone.type(screen.ids.number, "E12345678")
    phone.type(screen.ids.country, "CN")
    phone.type(screen.ids.birth, "1988-03-14")
    phone.type(screen.ids.expiry, "2034-01-01")
    phone.tap(screen.ids.use_fields)
    phone.settle()


def gate_after(phone, **where) -> bool:
    """Whether Validate now is enabled once the phone's sensors report ``where``."""
    for name, value in where.items():
        setattr(phone.presence, name, value)
    phone.app.check_gate()
    phone.settle()
    send = phone.screen("validate").ids.send
    assert send.disabled is not phone.app.gate_open
    return not send.disabled


def test_shop_to_phone_to_officer_to_shop_webhooks(app_world, app, traveller_api, start_traveller, tmp_path):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True  # the receiver listens on 127.0.0.1
    with Receiver() as receiver:
        hook = register(app_world.world, "shop", receiver.url(),
                        events=["form.validated", "form.check_required"])
        coat_form = app_world.issue_for(coat())
        watch_form = app_world.issue_for(watch())

        # --- the phone: a typed passport, the shop's forms ----------------------
        presence = SimulatedPresence(secret=bytes.fromhex(app_world.secrets[POST]))  # no fix, no post yet
        phone = start_traveller(traveller_api.url, tmp_path / "phone", presence=presence)
        type_passport(phone)
        assert phone.current == "forms" and phone.app.notice == ""
        # This phone has had the app since yesterday (a new install goes to the desk).
        app_world.phone(install_id=phone.app.wallet.install_id).installed(24 * 60)
        forms = {f.id: f for f in phone.app.wallet.forms}
        assert set(forms) == {coat_form["id"], watch_form["id"]}
        assert forms[coat_form["id"]].goods == ("Wool coat",) and forms[watch_form["id"]].goods == ("Chronograph",)
        assert all(f.status == "issued" and f.shop == "Watch House" for f in forms.values())
        shown = "\n".join(phone.texts())
        assert coat_form["id"] in shown and watch_form["id"] in shown and "Chronograph" in shown

        # --- the boarding pass, scanned as a picture ----------------------------
        boarding_pass = boarding_pass_today()
        picture = pdf417_png(boarding_pass, tmp_path / "boarding-pass.png")
        phone.app.frame_source_factory = lambda: scanning.ImageFiles([picture], grey=False)
        phone.go("trip")
        phone.tap(phone.screen().ids.scan)
        phone.wait(lambda: phone.app.wallet.trip is not None, "the boarding pass read")
        phone.settle()
        trip = phone.app.wallet.trip
        assert (trip["kind"], trip["departs_from"], trip["boarding_pass"], trip["warnings"]) == (
            "flight", "AMS", boarding_pass, [])
        assert phone.screen("trip").summary.startswith("Flight from AMS to Beijing")

        # --- Validate now: off until the phone is at Schiphol, fix and token ----
        phone.go("validate")
        assert sorted(phone.screen().chosen) == sorted([coat_form["id"], watch_form["id"]])
        assert not gate_after(phone)  # no fix, no post
        assert not gate_after(phone, lat=IN_AMS[0], lon=IN_AMS[1], accuracy_m=8.0)  # in the zone, no post heard
        assert not gate_after(phone, post_id=POST, accuracy_m=400.0)  # the post, but a poor fix
        assert not gate_after(phone, accuracy_m=8.0, lat=OUTSIDE_AMS[0], lon=OUTSIDE_AMS[1])  # at the bus station
        assert gate_after(phone, lat=IN_AMS[0], lon=IN_AMS[1])
        assert phone.app.gate_text == "You are in the validation zone of Schiphol."

        phone.tap(phone.screen().ids.send)
        phone.wait(lambda: phone.current == "result", "the verdicts")
        phone.settle()
        result = phone.screen("result")
        cards = result.cards()
        *verdict_cards, show_card = cards  # the verdicts in the order of the answer, the desk QR last

        def card_of(form_id):
            [card] = [c for c in verdict_cards if f"Form {form_id}" in c.body]
            return card

        coat_card, watch_card = card_of(coat_form["id"]), card_of(watch_form["id"])
        assert len(verdict_cards) == 2
        assert (coat_card.kind, coat_card.tone) == ("validated", "success")
        assert (watch_card.kind, watch_card.tone) == ("check_required", "warning")
        assert (show_card.kind, show_card.tone) == ("check_required", "warning")
        secret = app.config["PASSPORT_HASH_KEY"].encode()
        assert coat_card.title == "Export validated"
        assert f"Reference: {reference(secret, coat_form['id'], 'AMS')}" in coat_card.body
        assert watch_card.title == "Go to the customs desk"
        assert "customs desk" in watch_card.body and "Departures 2" in watch_card.body
        assert show_card.title == "Show this to the officer"
        texture = result.ids.desk_pass.texture
        assert texture is not None
        desk_pass = phone.app.wallet.last_result["desk_pass"]
        assert desk_pass and app_world.status(coat_form["id"]) == "validated"
        assert app_world.status(watch_form["id"]) == "check_required"
        qr_png = drawn_qr_png(texture, tmp_path / "desk-pass-as-drawn.png")
        phone.stop()  # the traveller walks to the desk; one app runs in this process at a time

        # --- the desk: the officer scans the phone's QR code -------------------
        device = Handheld(traveller_api.url, tmp_path / "handheld").start()
        try:
            device.log_in()
            device.app.frame_source_factory = lambda: scanning.ImageFiles([qr_png])
            device.tap(device.button("Find"))
            device.tap(device.button("Scan QR code"))
            device.wait(lambda: device.current == "check", "the check screen")
            check = device.screen("check")
            assert check.case.found_by == "desk_pass"
            [card] = check.cards()  # the watch; the coat is validated already
            assert card.form_id == watch_form["id"] and card.decidable
            assert "Watched goods" in card.rules
            device.tap(device.button("Validate all"))
            device.tap(device.button("Send decision"))
            device.wait(lambda: "recorded" in device.app.notice, "the decision recorded")
            device.settle()
        finally:
            device.stop()
        assert app_world.status(watch_form["id"]) == "validated"

        # --- back on the phone: both validated ----------------------------------
        phone.start()
        phone.settle()
        statuses = {f.id: f.status for f in phone.app.wallet.forms}
        assert statuses == {coat_form["id"]: "validated", watch_form["id"]: "validated"}
        phone.go("afterwards")
        shown = "\n".join(phone.texts())
        assert coat_form["id"] in shown and watch_form["id"] in shown

        # --- the shop hears of it, once each, signed ------------------------------
        clock = Clock(datetime.now(timezone.utc))
        run_worker(app, clock)
        run_worker(app, clock)  # a second run sends nothing again
        received = [verified(hook["secret"], request) for request in receiver.requests]

    seen = Counter((event["type"], event["data"]["form_id"]) for event in received)
    assert seen == Counter({
        ("form.validated", coat_form["id"]): 1,
        ("form.check_required", watch_form["id"]): 1,
        ("form.validated", watch_form["id"]): 1,
    })
    assert {e["data"]["exit_point"] for e in received} == {"AMS"}
    # The audit trail names the channel: the coat validated and the watch sent to the desk by the app.
    def channels(form_id, event_type):
        return [e["data"].get("channel") for e in app_world.events(form_id) if e["type"] == event_type]

    assert channels(coat_form["id"], "form.validated") == ["app"]
    assert channels(watch_form["id"], "form.check_required") == ["app"]
    assert len({request["id"] for request in receiver.requests}) == len(receiver.requests) == 3
    assert "E12345678" not in str(received)

