"""Every screen of the officer's handheld, in English and in Dutch, rendered
with real data and saved as PNG: ``make screenshots-officer`` keeps them in
screenshots/officer/en/ and screenshots/officer/nl/ (OFFICER_SCREENSHOTS),
``make test`` checks that each one renders. On every screen every text is
readable (not cut off, shortened, split inside a word or off the screen),
and the Dutch screens show no English of the handheld's catalog: only data
such as names, shops, goods and form ids.

Runs on SQLite only: the pictures do not depend on the database."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from shared import scanning
from tests.officer.layout import english_in, unreadable, visible_hints, visible_labels, words_of

JOHN = dict(first_name="John", last_name="Smith", passport_number="568432190", passport_country="US",
            nationality="US", residence_country="US", date_of_birth="1979-11-02")
AIKO = dict(first_name="Aiko", last_name="Tanaka", passport_number="TZ1234567", passport_country="JP",
            nationality="JP", residence_country="JP", date_of_birth="1992-06-30")


def desk_frame() -> np.ndarray:
    """What the camera sees before a form is held up: a desk, a paper edge."""
    frame = np.full((720, 1280), 96, np.uint8)
    frame += np.random.default_rng(7).integers(0, 24, frame.shape, dtype=np.uint8)
    cv2.rectangle(frame, (330, 120), (980, 700), 215, -1)
    for y in range(180, 640, 46):
        cv2.line(frame, (380, y), (380 + (y * 37) % 520, y), 120, 5)
    return frame


def data_words(world, forms: list[dict]) -> set[str]:
    """Words of the data the screens show: travellers, shops, goods, places,
    the officer, the server."""
    texts = ["officer", "officer2", "http 127.0.0.1"]
    for issued in forms:
        form = world.form(issued["id"])
        t = form["traveller"]
        texts += [t["first_name"], t["last_name"], form["retailer_name"], form["invoice_number"]]
        texts += [item["description"] for item in form["items"]]
        texts += [item.get("serial_number") or "" for item in form["items"]]
    for point in world.get("officer", "/api/v1/exit-points").get_json():
        texts += [point["name"], point.get("desk_location") or ""]
    return words_of(*texts)


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_officer_screen_renders_readably(desk_world, desk_server, handheld, passport_zone, tmp_path,
                                               language):
    out = Path(os.environ.get("OFFICER_SCREENSHOTS") or tmp_path / "screenshots") / language
    for old in out.glob("*.png"):
        old.unlink()
    world = desk_world
    mei = world.waiting_form()
    mei2 = world.waiting_form()
    john = world.waiting_form(**JOHN)
    aiko = world.waiting_form(**AIKO)
    data = data_words(world, [mei, mei2, john, aiko])
    png = tmp_path / "qr.png"
    png.write_bytes(world.get("officer", f"/api/v1/forms/{john['id']}/qr.png").data)
    shots = []
    texts_seen = 0

    def shot(name):
        nonlocal texts_seen
        device.pump(3)  # laid out after the last change (a badge grows, its neighbour shrinks)
        screen = device.screen()
        height = device.app.root.height
        assert unreadable(screen, height) == [], (language, name)
        if language == "nl":
            texts = [label.text for label in visible_labels(screen)] + visible_hints(screen)
            assert english_in(texts, data) == [], name
        texts_seen += len(visible_labels(screen))
        shots.append(device.screenshot(out / f"{name}.png"))

    device = handheld(language=language, frames=lambda: scanning.ArrayFrames([desk_frame()], loop=True))
    assert device.app.language == language
    login = device.screen("login")
    login.ids.username.text = "officer"
    login.ids.password.text = "correct-horse-battery"
    shot("01-login")
    device.tap(device.button("Log in"))
    device.wait(lambda: device.find_all("DeskButton", device.screen("exit_point").ids.points), "exit points")
    shot("02-exit-point")
    device.tap(device.button("AMS", device.screen("exit_point").ids.points))
    device.wait(lambda: len(device.find_all("DeskTravellerCard", device.screen("queue"))) == 3, "the queue")
    shot("03-queue")

    # Find: the camera's live view, then the passport reader opens Mei's forms.
    device.tap(device.button("Find"))
    device.tap(device.button("Scan QR code"))
    find = device.screen("find")
    device.wait(lambda: find.ids.camera.texture is not None and find.scanning, "the camera preview")
    shot("04-find")
    device.tap(device.button("Stop camera"))
    device.type(find.ids.passport, passport_zone("CHEN", "MEI", "E12345678", "CHN", "880314", "F", "340101"))
    device.wait(lambda: device.current == "check", "Mei's check")
    check = device.screen("check")
    coat = check.cards()[0].line_rows()[1]
    device.tap(device.find_all("DeskPresenceToggle", coat)[0])
    shot("05-check")
    check.ids.scroll.scroll_to(check.cards()[1], animate=False)
    shot("06-check-second-form")

    device.tap(device.button(device.app.tr("Validate lines shown ({shown} of {lines})", shown=1, lines=2),
                             check.cards()[0]))
    confirm = device.screen("confirm")
    confirm.ids.note.text = {"en": "Coat already shipped home, receipt shown.",
                             "nl": "Jas al naar huis verstuurd, bon getoond."}[language]
    shot("07-confirm-partial")
    device.tap(device.button("Back"))
    device.tap(device.button("Reject", check.cards()[1]))
    device.tap(device.button("Goods used", confirm.ids.reasons))
    shot("08-confirm-reject")

    # Offline: the rejection is saved on the handheld.
    desk_server.stop()
    device.tap(device.button("Send decision"))
    device.wait(lambda: device.app.waiting_count == 1, "the decision saved")
    assert device.current == "check"  # Mei's other form is still to decide
    check.ids.scroll.scroll_to(check.cards()[1], animate=False)
    shot("09-check-saved-offline")
    device.tap(device.button("Back"))
    device.tap(device.button("Queue"))
    shot("10-queue-offline")

    # Another officer decided that form meanwhile: both decisions shown.
    desk_server.start()
    world.post("officer2", f"/api/v1/forms/{mei2['id']}/decision",
               {"outcome": "validated", "lines": [{"line": 1, "present": True}, {"line": 2, "present": True}]})
    device.app.sync_now()
    device.wait(lambda: device.app.conflict_count == 1, "the conflict")
    device.tap(device.button(device.app.tr("{count} decision not recorded: see why", count=1)))
    device.wait(lambda: device.screen("conflict").recorded_by.startswith("Recorded: by"), "the other decision")
    shot("11-conflict")
    device.tap(device.button("I have seen this"))

    # The QR code of John's form, then a full validation.
    device.app.frame_source_factory = lambda: scanning.ImageFiles([png])
    device.tap(device.button("Find"))
    device.tap(device.button("Scan QR code"))
    device.wait(lambda: device.current == "check", "John's check")
    device.tap(device.button("Validate all"))
    device.tap(device.button("Send decision"))
    device.wait(lambda: device.current == "queue" and "recorded" in device.app.notice, "John validated")
    shot("12-queue-after-decisions")

    device.tap(device.button("History"))
    history = device.screen("history")
    device.wait(lambda: len(history.ids.list.data) == 2, "the history")
    shot("13-history")

    device.app.lock()
    device.wait(lambda: device.current == "lock", "the lock")
    shot("14-lock")

    assert texts_seen > 150
    assert [p.name for p in sorted(out.glob("*.png"))] == [p.name for p in shots]
    for path in shots:
        image = cv2.imread(str(path))
        assert image is not None and image.shape[:2][::-1] == tuple(device.window_size)
        assert image.std() > 20, f"{path.name} looks blank"
