"""The traveller shows the "show this to the officer" QR code of their app;
the officer's handheld reads it through its camera path (frame source and
zxing-cpp, a real QR image), finds the traveller's forms and validates.
A traveller who came straight to the desk gets a check opened there."""
from __future__ import annotations

from dataclasses import replace

import qrcode

from officer_app.wording import say
from shared import scanning
from tests.api.traveller_support import AMS_ZONE, AppWorld, coat, watch


def _app_world(desk_world, app) -> AppWorld:
    w = AppWorld(desk_world.world, app)
    w.admin("/api/v1/exit-points/AMS/zones", {"name": "Departures 2", "polygon": AMS_ZONE})
    w.secrets["AMS-D2-01"] = w.admin("/api/v1/exit-points/AMS/sensor-posts", {"id": "AMS-D2-01"})["secret"]
    return w


def shown(text: str) -> str:
    """A text as the Dutch handheld shows it."""
    return say(text, "nl")


def _qr_image(text: str, path):
    qr = qrcode.QRCode(border=4, box_size=6, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make_image().save(path)
    return path


def _scan(device, png) -> None:
    device.app.frame_source_factory = lambda: scanning.ImageFiles([png])
    device.tap(device.button("Find"))
    device.tap(device.button("Scan QR code"))
    device.wait(lambda: device.current == "check", "the check screen")


def test_the_officer_scans_the_desk_pass_and_validates_the_watch(desk_world, app, handheld, tmp_path):
    w = _app_world(desk_world, app)
    form = w.issue_for(watch())
    verdicts = w.phone().signed_in().verdicts([form["id"]])
    assert verdicts["items"][0]["verdict"] == "check_required"
    png = _qr_image(verdicts["desk_pass"], tmp_path / "desk-pass.png")

    device = handheld()
    device.log_in()
    _scan(device, png)

    check = device.screen("check")
    assert check.case.found_by == "desk_pass"
    [card] = check.cards()
    assert card.form_id == form["id"] and card.decidable and not card.openable
    assert "Watched goods" in card.rules
    assert "Found by the traveller's app (desk pass)." in check.warnings_text
    device.tap(device.button("Validate all"))
    device.tap(device.button("Send decision"))
    device.wait(lambda: "recorded" in device.app.notice, "the decision recorded")
    assert w.status(form["id"]) == "validated"


def test_a_traveller_straight_at_the_desk_gets_a_check_opened_there_in_dutch(desk_world, app, handheld, tmp_path):
    w = _app_world(desk_world, app)
    form = w.issue_for(coat())
    phone = w.phone().signed_in()
    desk_pass = phone.post("/api/v1/traveller/desk-pass").get_json()["desk_pass"]
    png = _qr_image(desk_pass, tmp_path / "desk-pass.png")

    device = handheld()
    device.config = replace(device.config, language="nl")
    device.stop()
    device.start()
    device.log_in()
    _scan(device, png)

    check = device.screen("check")
    [card] = check.cards()
    assert card.openable and not card.decidable
    assert "Gevonden via de app van de reiziger (baliepas)." in shown(check.warnings_text)
    device.tap(device.button("Controle openen aan deze balie"))
    device.wait(lambda: check.cards() and check.cards()[0].decidable, "the check opened")
    assert "Rechtstreeks naar de balie" in shown(check.cards()[0].rules)
    assert "controle geopend" in shown(device.app.notice)
    device.tap(device.button("Alles valideren"))
    device.tap(device.button("Beslissing versturen"))
    device.wait(lambda: "vastgelegd" in shown(device.app.notice), "the decision recorded")
    assert w.status(form["id"]) == "validated"
    assert [e["data"].get("channel") for e in w.events(form["id"]) if e["type"] == "form.check_required"] == ["desk"]


def test_an_expired_desk_pass_says_so(desk_world, app, handheld, tmp_path):
    w = _app_world(desk_world, app)
    w.issue_for(coat())
    phone = w.phone().signed_in()
    app.config["DESK_PASS_TTL"] = -1
    png = _qr_image(phone.post("/api/v1/traveller/desk-pass").get_json()["desk_pass"], tmp_path / "old.png")

    device = handheld()
    device.log_in()
    device.app.frame_source_factory = lambda: scanning.ImageFiles([png])
    device.tap(device.button("Find"))
    device.tap(device.button("Scan QR code"))
    find = device.screen("find")
    device.wait(lambda: "expired" in find.error, "the expired pass refused")
    assert device.current == "find"


def test_the_check_opens_at_the_desk_the_officer_signed_on_at(desk_world, app, handheld, tmp_path):
    w = _app_world(desk_world, app)
    form = w.issue_for(coat())
    desk_pass = w.phone().signed_in().post("/api/v1/traveller/desk-pass").get_json()["desk_pass"]
    png = _qr_image(desk_pass, tmp_path / "desk-pass.png")

    device = handheld()
    device.log_in(exit_point="RTM")
    _scan(device, png)
    check = device.screen("check")
    device.tap(device.button("Open a check at this desk"))
    device.wait(lambda: check.cards() and check.cards()[0].decidable, "the check opened")

    [opened] = [e for e in w.events(form["id"]) if e["type"] == "form.check_required"]
    assert (opened["exit_point"], opened["data"]["channel"]) == ("RTM", "desk")
    device.tap(device.button("Validate all"))
    device.tap(device.button("Send decision"))
    device.wait(lambda: "recorded" in device.app.notice, "the decision recorded")
    assert w.world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["exit_point"] == "RTM"


def test_an_officer_whose_duty_ended_is_told_so_at_the_desk_pass(desk_world, app, handheld, tmp_path):
    w = _app_world(desk_world, app)
    w.issue_for(coat())
    png = _qr_image(w.phone().signed_in().post("/api/v1/traveller/desk-pass").get_json()["desk_pass"],
                    tmp_path / "desk-pass.png")
    device = handheld()
    device.log_in()
    # The shift ended on the API (signed off elsewhere, or the longest shift passed).
    assert w.world.client.delete("/api/v1/duty", headers=w.auth("officer")).status_code == 204

    device.app.frame_source_factory = lambda: scanning.ImageFiles([png])
    device.tap(device.button("Find"))
    device.tap(device.button("Scan QR code"))

    find = device.screen("find")
    device.wait(lambda: "no longer on duty" in find.error, "the officer told to sign on again")
    assert device.current == "find"
