"""The handheld in Dutch and English: one catalog holds every Dutch text
the code uses (and nothing else), the NL | EN switch changes every text at
once and is kept across a restart, and problems of the API whose code the
handheld knows are said in the officer's language."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from officer_app import wording
from officer_app.wording import CATALOGS, Phrase, say
from shared.i18n import parse_po
from tests.builders import item
from tests.officer.catalog import APP, used_messages
from tests.officer.layout import english_in, unreadable, visible_hints, visible_labels

PLACEHOLDER = re.compile(r"\{\w+\}")
# A kv text written as a literal, not through app.tr: only the switch's own names.
KV_LITERAL = re.compile(r"""^\s*(?:text|hint_text|title|subtitle|heading):\s*(["'])(.*?)\1\s*$""", re.MULTILINE)


def dutch() -> dict[str, str]:
    messages = parse_po((Path(CATALOGS) / "nl.po").read_text(encoding="utf-8"))
    messages.pop("")  # the header
    return messages


def test_every_text_the_handheld_uses_has_dutch_and_the_catalog_holds_nothing_else():
    used = used_messages()
    catalog = dutch()
    assert len(used) > 200
    assert [m for m in used if not catalog.get(m, "").strip()] == []
    assert [m for m in catalog if m not in used] == []
    # The Dutch fills the same blanks as the English.
    assert [m for m in used if sorted(PLACEHOLDER.findall(m)) != sorted(PLACEHOLDER.findall(catalog[m]))] == []
    literals = [(path.name, text) for path in APP.rglob("*.kv")
                for _quote, text in KV_LITERAL.findall(path.read_text(encoding="utf-8"))]
    assert [(name, text) for name, text in literals if text not in ("NL", "EN", "")] == []


def test_dates_times_amounts_and_countries_are_written_the_dutch_way():
    line = Phrase.join(" · ", [wording.money(123456), wording.money(-500), wording.day(date(2028, 2, 29)),
                               wording.country("US"), wording.waiting(timedelta(minutes=67)),
                               wording.status("check_required")])
    assert line == "EUR 1,234.56 · EUR -5.00 · 29 Feb 2028 · United States (US) · 1 h 07 min · Waiting for a check"
    assert say(line, "nl") == ("€\u00a01.234,56 · €\u00a0-5,00 · 29 feb 2028 · Verenigde Staten (US) · 1 u 07 min"
                               " · Wacht op controle")
    assert say(Phrase.join(" · ", []), "nl") == ""  # no rules fired: nothing, not the catalog's header
    # 23:30 UTC on 28 March 2026 is half past midnight on the 29th in Amsterdam (CET).
    moment = wording.local_time(datetime(2026, 3, 28, 23, 30, tzinfo=UTC))
    assert (moment, say(moment, "nl")) == ("29 Mar 00:30", "29 mrt 00:30")
    # An API problem the handheld knows, in its words; any other, in the API's.
    known = wording.problem("deadline_passed", "The export deadline of form NL1 ended with 2026-11-30: ...",
                            form_id="NL1")
    assert say(known, "nl").startswith("De uiterste datum voor uitvoer van formulier NL1 was 30 nov 2026:")
    assert say(wording.problem("invalid_decision", "Lines must be unique."), "nl") == "Lines must be unique."


def shown_texts(device) -> list[str]:
    screen = device.screen()
    return [label.text for label in visible_labels(screen)] + visible_hints(screen)


def test_the_switch_on_the_login_screen_changes_every_text_and_is_kept_after_a_restart(handheld, tmp_path):
    device = handheld()  # English by its settings
    assert device.app.language == "en"
    english = shown_texts(device)
    assert "Log in" in english and "Username" in english

    device.tap(device.button("NL"))
    assert device.app.language == "nl"
    nl = shown_texts(device)
    assert "Inloggen" in nl and "Gebruikersnaam" in nl and "Log in met uw douaneaccount" in nl
    assert english_in(nl, set()) == []
    # Every text changed, but the switch's names and the server's address.
    assert set(english) & set(nl) <= {"NL", "EN"} | {t for t in english if t.startswith("Server:")}

    device.tap(device.button("EN"))
    assert shown_texts(device) == english
    device.tap(device.button("NL"))
    assert shown_texts(device) == nl
    assert (tmp_path / "handheld" / "language").read_text() == "nl"

    # The choice outlasts the app: it starts in Dutch although its settings say English.
    device.stop()
    again = handheld()
    assert again.config.language == "en" and again.app.language == "nl"
    assert shown_texts(again) == nl
    assert unreadable(again.screen(), again.app.root.height) == []


def test_after_login_the_queue_header_switches_the_language_of_what_the_handheld_wrote(
        desk_world, handheld):
    desk_world.waiting_form()
    device = handheld()
    device.log_in()
    queue = device.screen("queue")
    assert any(t.startswith("1 waiting · ") for t in shown_texts(device))
    device.tap(device.button("NL", queue))
    texts = shown_texts(device)
    assert any(t.startswith("1 wachtend · ") for t in texts)  # written by the screen, rendered again
    assert "Wachtrij" in texts and "Zoeken" in texts and "1 formulier, 2 regels  ·  €\u00a01.499,00" in texts
    device.tap(device.button("EN", queue))
    texts = shown_texts(device)
    assert any(t.startswith("1 waiting · ") for t in texts) and "1 form, 2 lines  ·  EUR 1,499.00" in texts


def test_a_problem_the_handheld_knows_is_said_in_dutch(desk_world, handheld):
    device = handheld(language="nl")
    login = device.screen("login")
    login.ids.username.text = "officer"
    login.ids.password.text = "not-the-password"
    device.tap(device.button("Log in"))
    device.wait(lambda: login.error, "the refusal")
    assert "Onjuiste gebruikersnaam of onjuist wachtwoord." in shown_texts(device)

    # Off duty on the API (the shift ended): the desk cannot open a check.
    form = desk_world.issue("shop", item(24900, description="Wool coat"))
    device.log_in()
    assert desk_world.client.delete("/api/v1/duty", headers=desk_world.auth("officer")).status_code == 204
    device.tap(device.button("Find"))
    find = device.screen("find")
    device.type(find.ids.form_id, form["id"])
    device.tap(device.button("Open"))
    device.wait(lambda: device.current == "check", "the form")
    device.tap(device.button("Open a check at this desk"))
    check = device.screen("check")
    device.wait(lambda: check.error, "the refusal")
    assert ("U bent niet meer in dienst aan een balie (dienst voorbij?): log uit en kies opnieuw uw "
            "uitgangspunt.") in shown_texts(device)
    assert check.error.startswith("You are no longer on duty")  # the same text, in English underneath
