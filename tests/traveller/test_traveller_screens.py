"""The real traveller's screens, headless (SDL offscreen), at 360 x 640 dp:
every screen in every language draws real glyphs and fits; Arabic runs
right to left; a typed zone with a wrong check digit is refused on screen;
"Validate now" opens only inside the zone with a fresh sensor-post token
and a good fix. No API is needed: the wallet holds what an earlier visit
fetched, and the API address is a closed port."""
from __future__ import annotations

import gc
from datetime import date

import numpy as np
import pytest
from kivy.uix.textinput import TextInput

from shared.i18n import LANGUAGES
from shared.traveller_client import FormVerdict, ValidationResult
from tests.glyphs import boxes
from tests.kivy_layout import broken_words, in_scroll_view
from tests.traveller.conftest import INSIDE, OUTSIDE, POST, SECRET, fill_wallet, open_forms
from tests.traveller.samples import ZONE_LINE1, ZONE_LINE2
from traveller_app import gate, trip
from traveller_app.presence import SimulatedPresence
from traveller_app.wording import ENTRY_ERRORS, GATE, ZONE_FIELDS, Wording

SCREENS = ("passport", "forms", "trip", "validate", "afterwards", "result")
EU_BOUND = "M1SMITH/JOHN MR       EQWE456 AMSCDGAF 1241 332Y012F0007 100"


def a_validation_result() -> ValidationResult:
    return ValidationResult((
        FormVerdict("NL7KQ3X9PD", "validated", None, "", reference="AMS-7Q2K"),
        FormVerdict("NL4TR8W2MC", "check_required", "random_sample", "",
                    desk_location="Departures 2, next to gate D1"),
        FormVerdict("NL2BX7Q4KA", "refused", "deadline_passed", "", export_deadline=date(2026, 2, 28)),
    ), desk_pass="desk-pass-sample-token")


@pytest.fixture
def phone_with_forms(start_traveller, closed_port_url, tmp_path):
    def start(language="en", **presence):
        data = tmp_path / "phone"
        fill_wallet(data, forms=open_forms(), language=language,
                    trip=trip.from_boarding_pass(EU_BOUND, date.today(), "AMS").to_json())
        return start_traveller(closed_port_url, data, presence=SimulatedPresence(secret=SECRET, **presence))
    return start


def show(phone, name):
    if name == "result":
        phone.app._validated(a_validation_result())
    phone.go(name)
    phone.pump(3)


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_screen_draws_real_glyphs_and_every_text_fits_the_phone(phone_with_forms, language):
    phone = phone_with_forms(language)
    assert phone.app.language == language
    checked = 0
    for name in SCREENS:
        show(phone, name)
        labels = phone.labels()
        assert len(labels) >= 3, name
        for label in labels:
            assert boxes(label.text, label.font_name) == [], (name, label.source_text)
            # Wrapped to the width it has and as tall as its text: nothing clipped.
            assert label.texture_size[0] <= label.width + 1, (name, label.source_text)
            assert label.texture_size[1] <= label.height + 1, (name, label.source_text)
            assert broken_words(label) == [], (name, label.source_text)
            if not in_scroll_view(label):  # outside a scrolled list, it must be on the screen
                assert 0 <= label.y and label.top <= phone.app.root.height + 1, (name, label.source_text)
            checked += len(label.text)
        for field in phone.screen().walk(restrict=True):
            if isinstance(field, TextInput) and field.hint_text:
                assert boxes(field.hint_text, field.font_name) == [], (name, field.hint_text)
    assert checked > 1000


def ink_columns(label) -> np.ndarray:
    """The columns of a label's texture that hold drawn pixels."""
    w, h = label.texture.size
    alpha = np.frombuffer(label.texture.pixels, np.uint8).reshape(h, w, 4)[:, :, 3]
    return np.nonzero(alpha.max(axis=0) > 0)[0]


def test_arabic_reads_right_to_left_and_english_left_to_right(phone_with_forms):
    phone = phone_with_forms("ar")
    forms = phone.screen("forms")
    title = forms.ids.title
    assert title.halign == "right" and title.text != title.source_text  # shaped, in display order
    assert "\u2066" not in "".join(label.text for label in phone.labels())  # no control characters drawn
    ink = ink_columns(title)
    assert ink.min() > title.texture.size[0] / 2  # a short title sits at the right edge
    # Pairs of buttons, a form's check box and a verdict's icon: the first one on the right.
    assert forms.ids.trip.x > forms.ids.next.x
    assert forms.ids.passport.x > forms.ids.afterwards.x
    phone.go("validate")
    row = phone.screen("validate").ids.rows.children[-1]
    checkbox, text = row.children[-1], row.children[0]
    assert checkbox.x > text.x
    show(phone, "result")
    card = phone.screen("result").cards()[0]
    icon_row = card.children[-1]
    icon, card_title = icon_row.children[-1], icon_row.children[0]
    assert icon.x > card_title.x

    phone.app.choose_language("en")
    phone.go("forms")
    assert title.halign == "left" and title.text == "My forms"
    assert ink_columns(title).max() < title.texture.size[0] / 2
    assert forms.ids.trip.x < forms.ids.next.x


@pytest.mark.parametrize("language", ["en", "de", "zh_CN", "ar"])
@pytest.mark.parametrize("wrong,field", [
    (ZONE_LINE2.replace("8803148", "8803158"), "mrz_birth_date"),  # born 15 March, check digit for the 14th
    (ZONE_LINE2.replace("E12345678", "E12345670"), "mrz_document_number"),
])
def test_a_typed_zone_with_a_wrong_check_digit_is_refused_with_the_reason_shown(
        start_traveller, closed_port_url, language, wrong, field):
    phone = start_traveller(closed_port_url, language=language)
    assert phone.current == "passport"
    screen = phone.screen()
    phone.type(screen.ids.zone, f"{ZONE_LINE1}\n{wrong}")
    phone.tap(screen.ids.use_zone)
    expected = Wording(language)(ZONE_FIELDS[field])
    assert screen.error == expected
    assert expected in phone.texts()  # on screen, not only in a property
    assert phone.current == "passport" and phone.app.wallet.passport is None

    phone.type(screen.ids.zone, f"{ZONE_LINE1}\n{ZONE_LINE2}")  # the lines as printed
    phone.tap(screen.ids.use_zone)
    assert phone.current == "forms" and screen.error == ""
    assert phone.app.wallet.passport.number == "E12345678"


def test_typed_fields_are_refused_one_by_one_with_the_reason(start_traveller, closed_port_url):
    phone = start_traveller(closed_port_url)
    screen = phone.screen()
    for field, value in (("number", "E12345678"), ("country", "XX")):
        phone.type(screen.ids[field], value)
    phone.tap(screen.ids.use_fields)
    assert screen.error == ENTRY_ERRORS["country"] and screen.error in phone.texts()
    phone.type(screen.ids.country, "CHN")
    phone.type(screen.ids.birth, "14-03-1988")
    phone.tap(screen.ids.use_fields)
    assert screen.error == ENTRY_ERRORS["date_of_birth"]
    phone.type(screen.ids.birth, "1988-03-14")
    phone.type(screen.ids.expiry, "2034-01-01")
    phone.tap(screen.ids.use_fields)
    assert phone.current == "forms" and phone.app.wallet.passport.country == "CN"


@pytest.mark.parametrize("place,reason", [
    (dict(**OUTSIDE, post_id=POST), gate.OUTSIDE_ZONE),
    (dict(**INSIDE), gate.NO_BEACON),  # in the zone, no sensor post seen
    (dict(**INSIDE, post_id=POST, seen_seconds_ago=300), gate.NO_BEACON),  # a token five minutes old
    (dict(**INSIDE, post_id="RTM-T1-01"), gate.NO_BEACON),  # a post of another exit point
    (dict(**INSIDE, post_id=POST, accuracy_m=120), gate.POOR_ACCURACY),
    (dict(**INSIDE, post_id=POST, mock=True), gate.MOCK_LOCATION),
    (dict(post_id=POST), gate.NO_FIX),
])
def test_validate_now_stays_off_without_good_evidence_and_says_why(phone_with_forms, place, reason):
    phone = phone_with_forms(**place)
    phone.go("validate")
    screen = phone.screen()
    send = screen.ids.send
    assert send.disabled and not phone.app.gate_open
    assert phone.app.gate_text == Wording("en")(GATE[reason])
    assert GATE[reason] in phone.texts()
    phone.tap(send)  # a tap on the greyed-out button does nothing
    phone.settle()
    assert phone.current == "validate" and not phone.app.busy


def test_validate_now_opens_inside_the_zone_with_a_fresh_token_and_closes_on_leaving(phone_with_forms):
    phone = phone_with_forms(**INSIDE, post_id=POST)
    phone.go("validate")
    send = phone.screen().ids.send
    assert not send.disabled and phone.app.gate_open
    assert phone.app.gate_text == "You are in the validation zone of Amsterdam Airport Schiphol."
    assert phone.screen().chosen == ["NL7KQ3X9PD", "NL4TR8W2MC"]

    # The phone walks out of the zone: the next check turns the button off.
    phone.presence.lat, phone.presence.lon = OUTSIDE["lat"], OUTSIDE["lon"]
    phone.app.check_gate()
    phone.settle()
    assert send.disabled and phone.app.gate_text == GATE[gate.OUTSIDE_ZONE]
    # Back inside, but the post is out of sight for long: still off.
    phone.presence.lat, phone.presence.lon, phone.presence.seen_seconds_ago = INSIDE["lat"], INSIDE["lon"], 120
    phone.app.check_gate()
    phone.settle()
    assert send.disabled and phone.app.gate_text == GATE[gate.NO_BEACON]
    phone.presence.seen_seconds_ago = 3
    phone.app.check_gate()
    phone.settle()
    assert not send.disabled

    # No form chosen: nothing to send.
    for row in phone.screen().ids.rows.children:
        row.chosen = False
    phone.pump(2)
    assert send.disabled


def test_the_trip_screen_offers_the_sailings_the_api_listed_and_a_tap_makes_the_ferry_trip(phone_with_forms):
    phone = phone_with_forms("en")
    phone.go("trip")
    [port] = [p for p in phone.app.wallet.exit_points if p.sailings]
    [sailing] = port.sailings
    local = sailing.departs_at.astimezone(trip.EXIT_TIMEZONE)
    [button] = phone.screen().ids.sailings.children
    assert button.source_text == f"Hook of Holland, Stena Line ferry terminal to Harwich (United Kingdom), {local:%H:%M}"
    phone.tap(button)
    chosen = phone.app.wallet.trip
    assert (chosen["kind"], chosen["departs_from"], chosen["sailing"]) == ("ferry", "HVH", sailing.id)
    assert chosen["day"] == local.date().isoformat()
    assert phone.screen().summary.startswith("Ferry from HVH to Harwich (United Kingdom)")


@pytest.fixture
def phone_clock_on_another_day(monkeypatch):
    """The phone's clock still on a time zone where the date is not
    Amsterdam's (a traveller who never changed it from home)."""
    import time
    from datetime import datetime

    amsterdam = datetime.now(trip.EXIT_TIMEZONE)
    monkeypatch.setenv("TZ", "Etc/GMT+11" if amsterdam.hour < 12 else "Etc/GMT-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_todays_flight_is_today_by_amsterdams_calendar_whatever_the_phones_clock_says(
        phone_with_forms, phone_clock_on_another_day):
    assert date.today() != trip.local_today()
    phone = phone_with_forms("en")
    julian = trip.local_today().timetuple().tm_yday
    phone.app.give_boarding_pass(f"M1CHEN/MEI            EXYZ789 AMSPEKKL 0897 {julian:03d}Y023C0042 100")
    kept = phone.app.wallet.trip
    assert kept["destination"].startswith("Beijing")
    assert (kept["day"], kept["warnings"]) == (trip.local_today().isoformat(), [])


def test_brackets_in_arabic_are_drawn_mirrored_and_values_stay_as_they_are():
    from kivy_common.text import visual_line

    assert visual_line("جواز السفر \u2066E12345678\u2069 (\u2066CN\u2069)").startswith("(CN) E12345678 ")
    assert visual_line("تاريخ الميلاد (YYYY-MM-DD)").startswith("(YYYY-MM-DD) ")
    assert visual_line("المتجر \u2066Watch House (Schiphol)\u2069").startswith("Watch House (Schiphol) ")


def test_a_notice_follows_a_change_of_language(phone_with_forms):
    phone = phone_with_forms("en")
    phone.settle()
    assert phone.app.notice == "No connection: showing what this phone kept."
    phone.app.choose_language("ru")
    assert phone.app.notice == Wording("ru")("No connection: showing what this phone kept.")


def test_no_kv_rule_of_the_traveller_app_shares_a_class_name_with_another_app():
    # kv rules apply by class name to every class of that name in a process
    # (the suite loads all three apps): the kiosk's <ResultScreen> once
    # dressed the traveller's result screen in the kiosk's buttons.
    import re

    from tests.servers import ROOT

    def rules(app):
        return {name.split("@")[0] for path in (ROOT / app).rglob("*.kv")
                for name in re.findall(r"^<([A-Za-z@+]+)>:", path.read_text(), re.M)}

    assert rules("traveller_app") & (rules("kiosk_app") | rules("officer_app")) == set()


def test_the_result_screen_keeps_its_desk_pass_while_it_puts_the_cards_in_again(phone_with_forms):
    """Showing a result takes every card out of the box, the desk pass's
    image too, and puts them back: the garbage collector running in
    between must not free the image (Kivy's ids hold weak references)."""
    phone = phone_with_forms("en")
    screen = phone.app.screens["result"]
    box = screen.ids.cards
    clear = box.clear_widgets

    def clear_then_collect(*args, **kwargs):
        clear(*args, **kwargs)
        gc.collect()

    box.clear_widgets = clear_then_collect
    for _ in range(2):
        phone.app._validated(a_validation_result())
    assert screen.ids.desk_pass.texture is not None
    assert box.children[0] is screen.ids.desk_pass.__self__  # the desk pass last
