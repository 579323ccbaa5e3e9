"""Translation catalogs: every message the kiosk and the traveller's app
show exists in every language, with the same placeholders; catalogs
compile and load."""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from shared.i18n import LANGUAGES, catalog_file, compile_mo, parse_po, translate

REPO = Path(__file__).resolve().parents[2]
REQUIRED = ["en", "nl", "de", "fr", "es", "it", "zh_CN", "ja", "ko", "ru", "ar", "tr"]
_STRING = r'"(?:[^"\\]|\\.)*"'


APPS = ("kiosk_app", "traveller_app")
# A literal text in a kv file that a person reads, not passed through
# app.tr: a quoted string holding a lower-case word.
_KV_LITERAL = re.compile(rf"^\s*(?:source_text|text|hint_text|title)\s*:\s*(?!.*app\.(?:tr|hint)\().*?({_STRING})")


def app_messages(app: str) -> set[str]:
    """Every message id an app marks: _("...") in Python and app.tr("...")
    or app.hint("...") in kv files (adjacent string literals joined)."""
    found = set()
    files = [*(REPO / app).rglob("*.py"), *(REPO / app).rglob("*.kv")]
    for path in files:
        for match in re.finditer(rf"(?:\b_|app\.tr|app\.hint)\(\s*((?:{_STRING}\s*)+)", path.read_text()):
            found.add("".join(eval(s) for s in re.findall(_STRING, match.group(1))))  # noqa: S307
    return found


def all_messages() -> set[str]:
    return set().union(*(app_messages(app) for app in APPS))


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_twelve_required_languages_are_offered_each_named_in_itself():
    assert REQUIRED == list(LANGUAGES)
    assert LANGUAGES["zh_CN"].native_name == "简体中文"
    assert LANGUAGES["ar"].native_name == "العربية" and LANGUAGES["ar"].rtl
    assert LANGUAGES["de"].native_name == "Deutsch"
    assert [code for code, lang in LANGUAGES.items() if lang.rtl] == ["ar"]


@pytest.mark.parametrize("app,least", [("kiosk_app", 40), ("traveller_app", 70)])
def test_each_app_marks_dozens_of_messages(app, least):
    assert len(app_messages(app)) > least


@pytest.mark.parametrize("app", APPS)
def test_kv_files_show_no_text_that_bypasses_the_catalogs(app):
    untranslated = []
    for path in (REPO / app).rglob("*.kv"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = _KV_LITERAL.match(line)
            if match and re.search(r"\b[a-z]{2,}\b", eval(match.group(1))):  # noqa: S307
                untranslated.append(f"{path.name}:{number}: {line.strip()}")
    assert untranslated == []


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("code", [c for c in REQUIRED if c != "en"])
def test_every_message_of_each_app_is_translated_with_the_same_placeholders(app, code):
    catalog = parse_po(catalog_file(code).read_text(encoding="utf-8"))
    messages = app_messages(app)
    missing = sorted(messages - set(catalog))
    assert missing == []
    for message in messages:
        assert fields(catalog[message]) == fields(message), message
        assert catalog[message] != message or code == "tr" and message.startswith("Form ")


@pytest.mark.parametrize("code", [c for c in REQUIRED if c != "en"])
def test_catalogs_hold_no_stale_messages(code):
    catalog = parse_po(catalog_file(code).read_text(encoding="utf-8"))
    assert sorted(set(catalog) - all_messages() - {""}) == []


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
