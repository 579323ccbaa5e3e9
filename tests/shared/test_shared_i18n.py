"""Translation catalogs: every message the kiosk shows exists in every
language, with the same placeholders; catalogs compile and load."""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from shared.i18n import LANGUAGES, catalog_file, compile_mo, parse_po, translate

REPO = Path(__file__).resolve().parents[2]
REQUIRED = ["en", "nl", "de", "fr", "es", "it", "zh_CN", "ja", "ko", "ru", "ar", "tr"]
_STRING = r'"(?:[^"\\]|\\.)*"'


def kiosk_messages() -> set[str]:
    """Every message id the kiosk app marks: _("...") in Python and
    app.tr("...") in kv files (adjacent string literals joined)."""
    found = set()
    files = [*(REPO / "kiosk_app").rglob("*.py"), *(REPO / "kiosk_app").rglob("*.kv")]
    for path in files:
        for match in re.finditer(rf"(?:\b_|app\.tr)\(\s*((?:{_STRING}\s*)+)", path.read_text()):
            found.add("".join(eval(s) for s in re.findall(_STRING, match.group(1))))  # noqa: S307
    return found


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_twelve_required_languages_are_offered_each_named_in_itself():
    assert REQUIRED == list(LANGUAGES)
    assert LANGUAGES["zh_CN"].native_name == "简体中文"
    assert LANGUAGES["ar"].native_name == "العربية" and LANGUAGES["ar"].rtl
    assert LANGUAGES["de"].native_name == "Deutsch"
    assert [code for code, lang in LANGUAGES.items() if lang.rtl] == ["ar"]


def test_the_kiosk_marks_dozens_of_messages():
    assert len(kiosk_messages()) > 40


@pytest.mark.parametrize("code", [c for c in REQUIRED if c != "en"])
def test_every_kiosk_message_is_translated_with_the_same_placeholders(code):
    catalog = parse_po(catalog_file(code).read_text(encoding="utf-8"))
    missing = sorted(kiosk_messages() - set(catalog))
    assert missing == []
    for message in kiosk_messages():
        assert fields(catalog[message]) == fields(message), message
        assert catalog[message] != message or code == "tr" and message.startswith("Form ")


@pytest.mark.parametrize("code", [c for c in REQUIRED if c != "en"])
def test_catalogs_hold_no_stale_messages(code):
    catalog = parse_po(catalog_file(code).read_text(encoding="utf-8"))
    assert sorted(set(catalog) - kiosk_messages() - {""}) == []


def test_a_message_is_looked_up_and_filled_in():
    assert translate("de", "Start") == "Starten"
    assert translate("fr", "Forms scanned: {count}", count=3) == "Bordereaux scannés : 3"
    assert translate("zh_CN", "Done") == "完成"
    assert translate("en", "Forms scanned: {count}", count=2) == "Forms scanned: 2"
    assert translate("xx", "Done") == "Done"  # unknown language: the English id


def test_po_files_parse_and_compile_to_the_gnu_mo_format():
    text = 'msgid ""\nmsgstr ""\n"Language: nl\\n"\n\n# a comment\nmsgid "Back"\nmsgstr "Terug"\n\n' \
           'msgid "Two "\n"lines"\nmsgstr "Twee "\n"regels"\n\nmsgid "Untranslated"\nmsgstr ""\n'
    messages = parse_po(text)
    assert messages == {"": "Language: nl\n", "Back": "Terug", "Two lines": "Twee regels"}
    mo = compile_mo(messages)
    assert mo[:4] == (0x950412DE).to_bytes(4, "little")
