"""Every message the pages show is translated: Dutch everywhere, the
kiosk's languages on the traveller status page."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from jinja2 import Environment
from jinja2.ext import extract_from_ast

from api.portal import i18n, labels
from api.portal.form_entry import parse_amount_cents, read

PORTAL = Path(__file__).parents[2] / "api" / "portal"
TRAVELLER_FILES = {"status.html", "traveller_base.html", "traveller.py", "error.html"}


def _messages() -> dict[str, set[str]]:
    """Every literal passed to ``_()`` in the templates and modules, with
    the files that use it."""
    found: dict[str, set[str]] = {}
    env = Environment()
    for path in PORTAL.rglob("*.html"):
        for _line, _function, message in extract_from_ast(env.parse(path.read_text()), gettext_functions=("_",)):
            if isinstance(message, str):
                found.setdefault(message, set()).add(path.name)
    for path in PORTAL.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.setdefault(node.args[0].value, set()).add(path.name)
    # Labels looked up through a table.
    for table in (labels.CATEGORY_TEXT, labels.RULE_TEXT, labels.REASON_TEXT):
        for text in table.values():
            found.setdefault(text, set()).add("labels.py")
    return found


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def test_the_extraction_finds_the_messages():
    messages = _messages()
    assert len(messages) > 200
    assert "Issue form" in messages and "Not validated yet" in messages


def test_every_message_has_a_dutch_translation_with_the_same_placeholders():
    dutch = i18n.catalog("nl")
    missing = sorted(m for m in _messages() if m not in dutch)
    assert missing == []
    for english, translated in dutch.items():
        assert _placeholders(english) == _placeholders(translated), english


@pytest.mark.parametrize("code", [c for c in i18n.TRAVELLER_LANGUAGES if c not in ("en", "nl")])
def test_the_status_page_is_translated_into_every_kiosk_language(code):
    needed = {m for m, files in _messages().items() if files & TRAVELLER_FILES}
    catalog = i18n.catalog(code)
    assert sorted(needed - set(catalog)) == []
    for english, translated in catalog.items():
        assert translated and translated != english, english
        assert _placeholders(english) == _placeholders(translated), english


def test_amounts_are_read_as_typed_at_a_dutch_or_english_till():
    assert parse_amount_cents("12,50") == 1250
    assert parse_amount_cents("12.5") == 1250
    assert parse_amount_cents("€ 1250") == 125000
    assert parse_amount_cents("0,07") == 7
    for wrong in ("", "1.250,00", "12,345", "-5", "1e3", "twelve"):
        assert parse_amount_cents(wrong) is None, wrong


def test_posted_lines_are_renumbered_and_empty_ones_dropped():
    from werkzeug.datastructures import MultiDict

    posted = MultiDict({
        "items.0.description": "Scarf", "items.0.price": "10",
        "items.3.description": "", "items.3.price": "", "items.3.quantity": "1",
        "items.7.description": "Book", "items.7.price": "20", "items.7.vat_rate": "9",
        "items.x.description": "ignored", "items.9.evil": "ignored",
    })
    entry = read(posted, "21")
    assert [(line["description"], line["vat_rate"]) for line in entry.lines] == [("Scarf", "21"), ("Book", "9")]
