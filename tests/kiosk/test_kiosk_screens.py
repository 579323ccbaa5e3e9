"""The real kiosk screens, headless (SDL offscreen), against a live API:
QR images of issued forms go through the frame source to the verdict
screens; a typed passport zone pulls up every form; an EU-bound boarding
pass is warned; offline scans queue, survive a restart and sync once;
Chinese and Arabic render real glyphs; an idle session is forgotten."""
from __future__ import annotations

import time
from datetime import timedelta

import cv2
import numpy as np
import pytest
import zxingcpp
from kivy.base import EventLoop
from kivy.core.window import Window

from kiosk_app import desk
from kiosk_app.app import KioskApp
from kiosk_app.config import KioskConfig
from kivy_common.text import font_for, visual_line
from shared.scanning import ArrayFrames

from tests.glyphs import glyph_bitmap
from tests.kiosk.conftest import FRAMES, wait_for
from tests.kiosk.test_kiosk_desk import AMS_CDG, WATCH, passport_zone

ROBOTO_HAS_NO_CJK_OR_ARABIC = font_for("en")


@pytest.fixture(scope="module")
def window():
    EventLoop.ensure_window()
    Window.size = (1280, 800)
    return Window


def pump():
    EventLoop.idle()


@pytest.fixture
def start_kiosk(window, tmp_path, world, api):
    apps = []

    def start(data_dir=None, **settings):
        settings = {"api_url": api.url, "device_token": world.devices["kiosk"], "exit_point": "AMS",
                    "desk_location": "Departures 2", "camera": "none", "sound": False,
                    "sync_interval": 0.3, "data_dir": data_dir or tmp_path / "kiosk", **settings}
        app = KioskApp(KioskConfig(**settings))
        app._run_prepare()
        apps.append(app)
        pump()
        return app

    yield start
    for app in apps:
        stop(app)


def stop(app):
    # on_stop (not just shutdown): kv's `app` proxy forgets this app then,
    # so the next app's kv rules bind to the next app.
    app.dispatch("on_stop")
    if app.root.parent is not None:
        Window.remove_widget(app.root)
    pump()


def camera_frame(png: bytes) -> np.ndarray:
    """A QR code image as the API serves it, held up in a camera-like frame
    (1280x720, on one of the sample frames' cluttered backgrounds)."""
    code = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    scale = min(1.0, 420 / code.shape[0])
    code = cv2.resize(code, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = cv2.imread(str(FRAMES / "frame31.jpg"), cv2.IMREAD_GRAYSCALE).copy()
    y, x = 150, 430
    frame[y:y + code.shape[0], x:x + code.shape[1]] = code
    return frame


def qr_png(world, form) -> bytes:
    r = world.get("shop", f"/api/v1/forms/{form['id']}/qr.png")
    assert r.status_code == 200
    return r.data


def cards(app):
    return app.screens["result"].shown


def shown_kinds(app):
    return [c.kind for c in cards(app)] if app.manager.current == "result" else []


def show_frames(app, frames):
    app.use_frames(ArrayFrames(frames))


def type_into_kiosk(text: str):
    """What a keyboard-wedge scanner does: characters, then Enter per line."""
    for line in text.split("\n"):
        Window.dispatch("on_textinput", line)
        Window.dispatch("on_key_down", 13, 40, None, [])


def scanned_events(world, form_id) -> int:
    items = world.get("shop", f"/api/v1/forms/{form_id}/events").get_json()["items"]
    return [e["type"] for e in items].count("form.scanned")


def test_form_qr_codes_seen_by_the_camera_get_the_right_verdict_screen(start_kiosk, world):
    coat, watch, cancelled = world.issue(), world.issue("shop", WATCH), world.issue()
    assert world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel").status_code == 200
    app = start_kiosk()
    app.go("scan")

    show_frames(app, [camera_frame(qr_png(world, coat))] * 3)
    wait_for(lambda: shown_kinds(app) == [desk.VALIDATED], pump=pump)
    [card] = cards(app)
    assert card.ids.icon.symbol == "tick"
    assert card.colour[:3] == pytest.approx([0.06, 0.50, 0.22])
    assert card.title == "Export validated"
    assert "Your refund will be paid by Refunds Inc." in card.body and coat["id"] in card.body
    assert app.screens["scan"].preview.texture.size == (1280, 720)  # the frames were shown

    show_frames(app, [camera_frame(qr_png(world, watch))] * 3)
    wait_for(lambda: shown_kinds(app) == [desk.CHECK_REQUIRED], pump=pump)
    [card] = cards(app)
    assert (card.ids.icon.symbol, card.title) == ("desk", "Go to the customs desk")
    assert "Departures 2" in card.body and "before you check in your luggage" in card.body

    show_frames(app, [camera_frame(qr_png(world, cancelled))] * 3)
    wait_for(lambda: shown_kinds(app) == [desk.REFUSED], pump=pump)
    [card] = cards(app)
    assert (card.ids.icon.symbol, card.title) == ("cross", "Not validated")
    assert "This form was cancelled by the shop." in card.body
    assert app.forms_scanned == 3


def test_a_form_scanned_twice_is_ignored_politely(start_kiosk, world):
    form = world.issue()
    app = start_kiosk()
    type_into_kiosk(form["qr_payload"])
    wait_for(lambda: shown_kinds(app) == [desk.VALIDATED], pump=pump)
    app.go("scan")
    type_into_kiosk(form["qr_payload"])
    wait_for(lambda: shown_kinds(app) == [desk.DUPLICATE], pump=pump)
    assert cards(app)[0].title == "Already scanned"
    assert app.forms_scanned == 1
    assert scanned_events(world, form["id"]) == 1


def test_a_passport_read_by_a_document_reader_pulls_up_all_forms(start_kiosk, world):
    coat, watch = world.issue(), world.issue("shop", WATCH)
    app = start_kiosk()
    type_into_kiosk(passport_zone())
    wait_for(lambda: sorted(shown_kinds(app)) == [desk.CHECK_REQUIRED, desk.VALIDATED], pump=pump)
    assert {c.kind: coat["id"] in c.body or watch["id"] in c.body for c in cards(app)} == {
        desk.VALIDATED: True, desk.CHECK_REQUIRED: True}
    app.go("summary")
    pump()
    assert len(app.screens["summary"].shown) == 2


def test_a_boarding_pass_to_an_eu_airport_gets_the_warning(start_kiosk):
    app = start_kiosk()
    symbol = np.array(zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(AMS_CDG, zxingcpp.BarcodeFormat.PDF417), scale=3))
    frame = cv2.imread(str(FRAMES / "frame33.jpg"), cv2.IMREAD_GRAYSCALE).copy()
    frame[200:200 + symbol.shape[0], 300:300 + symbol.shape[1]] = symbol
    show_frames(app, [frame] * 4)  # the boarding-pass decoder has every third frame
    wait_for(lambda: shown_kinds(app) == [desk.NOT_LAST_EXIT], pump=pump)
    [card] = cards(app)
    assert card.title == "This is not your last airport in the EU"
    assert "Charles de Gaulle" in card.body and card.ids.icon.symbol == "warning"


def test_with_the_api_down_scans_queue_survive_a_restart_and_sync_exactly_once(
        start_kiosk, world, api, tmp_path, figures):
    forms = [world.issue(), world.issue()]
    data = tmp_path / "kiosk-data"
    app = start_kiosk(data_dir=data)
    wait_for(lambda: (data / "jwks.json").exists() and app.online, pump=pump)  # keys cached while online

    api.stop()  # the central system goes down
    for form in forms:
        type_into_kiosk(form["qr_payload"])
        wait_for(lambda f=form: shown_kinds(app) == [desk.RECORDED] and f["id"] in cards(app)[0].body, pump=pump)
    assert cards(app)[0].title == "Scan recorded"
    assert (app.online, app.pending) == (False, 2)
    assert "OFFLINE" in app.badge.text and "2 waiting" in app.badge.text
    stop(app)  # the kiosk restarts while the API is still down

    restarted = start_kiosk(data_dir=data)
    assert restarted.pending == 2
    api.start()  # the central system is back, on the same address
    restarted.request_sync()
    wait_for(lambda: restarted.pending == 0 and restarted.online, timeout=15, pump=pump)
    assert restarted.badge.text == "online"
    recorded = [scanned_events(world, form["id"]) for form in forms]
    assert recorded == [1, 1]
    for form in forms:
        assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "validated"
    figures(queued=2, restarts=1, arrived=sum(n > 0 for n in recorded), lost=recorded.count(0),
            duplicated=sum(n - 1 for n in recorded if n > 1))


@pytest.mark.parametrize("language,sample", [("zh_CN", "退税出口验证"), ("ar", "التحقق من تصدير")])
def test_chinese_and_arabic_render_real_glyphs_not_boxes(start_kiosk, language, sample):
    app = start_kiosk()
    app.choose_language(language)
    pump()
    title = app.screens["welcome"].ids.title
    assert sample in title.source_text
    # A screenshot of the title as shown, and of the same label drawn with a
    # font that has no such glyphs (every character becomes the same box).
    shown = np.asarray(title.export_as_image().texture.pixels)
    title.font_name = ROBOTO_HAS_NO_CJK_OR_ARABIC
    title.texture_update()
    boxes = np.asarray(title.export_as_image().texture.pixels)
    assert shown.size == boxes.size and np.count_nonzero(shown != boxes) > shown.size * 0.01

    # Character by character: in the kiosk's font no glyph is the "missing
    # glyph" box and distinct letters look distinct; in the font without
    # them every one is the box (so this check would catch tofu).
    font = font_for(language)
    chars = sorted(set(visual_line(sample) if language == "ar" else sample) - {" "})
    missing = glyph_bitmap("\U0010fffd", font)
    drawn = [glyph_bitmap(c, font) for c in chars]
    assert missing not in drawn
    assert len(set(drawn)) == len(chars)
    assert {glyph_bitmap(c, ROBOTO_HAS_NO_CJK_OR_ARABIC) for c in chars} == {
        glyph_bitmap("\U0010fffd", ROBOTO_HAS_NO_CJK_OR_ARABIC)}


def test_arabic_lines_are_right_aligned_and_in_display_order(start_kiosk):
    app = start_kiosk()
    app.choose_language("ar")
    pump()
    label = app.screens["welcome"].ids.before_check_in
    assert label.halign == "right"
    assert label.text != label.source_text  # shaped and reordered
    assert "\u2066" not in label.text  # no control characters left to draw


def test_an_idle_session_is_forgotten_and_the_kiosk_returns_to_welcome(start_kiosk, world):
    form = world.issue()
    app = start_kiosk(idle_timeout=0.6)
    app.choose_language("de")
    type_into_kiosk(form["qr_payload"])
    wait_for(lambda: shown_kinds(app) == [desk.VALIDATED], pump=pump)
    assert cards(app)[0].title == "Ausfuhr bestätigt"
    started = time.monotonic()
    wait_for(lambda: app.manager.current == "welcome", pump=pump)
    assert time.monotonic() - started < 5
    assert app.session.outcomes == [] and app.session.seen == set()
    assert cards(app) == [] and app.language == "en"


def test_done_then_finish_ends_the_session(start_kiosk, world):
    forms = [world.issue(), world.issue()]
    app = start_kiosk()
    for form in forms:
        type_into_kiosk(form["qr_payload"])
        wait_for(lambda f=form: shown_kinds(app) == [desk.VALIDATED] and f["id"] in cards(app)[0].body, pump=pump)
    app.screens["result"].ids.done.dispatch("on_release")
    pump()
    assert app.manager.current == "summary"
    assert [c.kind for c in app.screens["summary"].shown] == [desk.VALIDATED, desk.VALIDATED]
    app.screens["summary"].ids.finish.dispatch("on_release")
    pump()
    assert app.manager.current == "welcome" and app.screens["summary"].shown == []


def test_every_screen_is_captured_in_several_languages(window, tmp_path):
    from kiosk_app.screenshots import capture

    written = capture(tmp_path / "shots", languages=("en", "zh_CN", "ar"))
    assert len(written) == 30  # 10 screens and outcomes, 3 languages
    assert all(p.stat().st_size > 10_000 for p in written)


def test_offline_without_keys_the_kiosk_sends_the_traveller_to_the_desk_and_never_says_genuine(
        start_kiosk, world, api, tmp_path):
    form = world.issue()
    api.stop()  # down before this kiosk ever fetched the keys
    app = start_kiosk(data_dir=tmp_path / "fresh-kiosk")
    type_into_kiosk(form["qr_payload"])
    wait_for(lambda: shown_kinds(app) == [desk.UNVERIFIED], pump=pump)
    [card] = cards(app)
    assert card.title == "Go to the customs desk"
    assert "Departures 2" in card.body and form["id"] in card.body
    for claim in ("genuine", "recorded", "saved", "Scan recorded"):
        assert claim not in card.title + card.body
    # Kept for the record, and the summary says no more than the result did.
    assert app.pending == 1
    app.go("summary")
    pump()
    [summary] = app.screens["summary"].shown
    assert summary.title == "Go to the customs desk" and "genuine" not in summary.body


def test_a_replay_the_api_refuses_is_counted_listed_for_staff_and_on_the_dashboard(
        start_kiosk, world, api, tmp_path, client):
    from tests.portal.portal_support import portal_login

    form, other = world.issue(), world.issue()
    data = tmp_path / "kiosk-data"
    app = start_kiosk(data_dir=data)
    wait_for(lambda: (data / "jwks.json").exists() and app.online, pump=pump)
    api.stop()
    app.desk.client.clock_offset = -timedelta(minutes=10)  # the scan is made ten minutes "ago"
    type_into_kiosk(form["qr_payload"])
    wait_for(lambda: shown_kinds(app) == [desk.RECORDED], pump=pump)
    # While it is cut off, a live scan arrives with its token (a copy).
    assert world.post("kiosk", "/api/v1/scans", {"qr_payload": other["qr_payload"]}).status_code == 200
    api.start()
    app.request_sync()
    wait_for(lambda: app.pending == 0 and app.refused == 1, timeout=15, pump=pump)
    assert "1 refused" in app.badge.text
    # Staff touch the badge: the refusal is listed, with the form number.
    app.badge.dispatch("on_open")
    pump()
    assert app.manager.current == "staff"
    staff = app.screens["staff"]
    assert "scanned_before_last_contact" in staff.refused_list
    # The number masked: travellers can touch the badge too.
    assert form["id"] not in staff.refused_list and f"{form['id'][:2]}…{form['id'][-4:]}" in staff.refused_list
    assert "not yet reported" not in staff.refused_list
    # And the supervisor sees it on the dashboard.
    assert portal_login(client, "officer").status_code == 302
    page = client.get("/dashboard?exit_point=AMS").get_data(as_text=True)
    section = page[page.index('id="refused-replays"'):]
    assert form["id"] in section and "scanned_before_last_contact" in section
