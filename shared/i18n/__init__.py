"""Translations for the apps: gettext catalogs, one ``.po`` file a language.

The catalogs are kept as ``.po`` source only and compiled in memory when
loaded (a few dozen messages, well under a millisecond), so there is no
``.mo`` build step and no compiled file that can go stale. Message ids are
the English texts; placeholders are ``{name}`` fields filled after lookup.

Each language is named in itself (what a traveller looks for) and carries
its writing direction and the script its font must cover.
"""
from __future__ import annotations

import ast
import gettext
import io
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOGS = Path(__file__).parent


@dataclass(frozen=True)
class Language:
    code: str  # gettext locale name: "en", "zh_CN"
    native_name: str  # the language named in itself
    english_name: str
    rtl: bool = False
    script: str = "Latn"  # ISO 15924: which glyphs its font needs


LANGUAGES: dict[str, Language] = {lang.code: lang for lang in [
    Language("en", "English", "English"),
    Language("nl", "Nederlands", "Dutch"),
    Language("de", "Deutsch", "German"),
    Language("fr", "Français", "French"),
    Language("es", "Español", "Spanish"),
    Language("it", "Italiano", "Italian"),
    Language("zh_CN", "简体中文", "Chinese (simplified)", script="Hans"),
    Language("ja", "日本語", "Japanese", script="Jpan"),
    Language("ko", "한국어", "Korean", script="Kore"),
    Language("ru", "Русский", "Russian", script="Cyrl"),
    Language("ar", "العربية", "Arabic", rtl=True, script="Arab"),
    Language("tr", "Türkçe", "Turkish"),
]}


def parse_po(text: str) -> dict[str, str]:
    """The translated messages of a ``.po`` file: ``{msgid: msgstr}``.

    Handles what these catalogs use: comments, ``msgctxt``-free entries,
    multi-line strings, the header entry. Untranslated (empty) messages are
    left out, so gettext falls back to the English id.
    """
    messages: dict[str, str] = {}
    current: dict[str, str] = {}
    key = None

    def flush():
        if "msgid" in current and current.get("msgstr"):
            messages[current["msgid"]] = current["msgstr"]
        current.clear()

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            if not line and current.get("msgstr") is not None:
                flush()
                key = None
            continue
        if line.startswith(("msgid ", "msgstr ")):
            key, _, literal = line.partition(" ")
            if key == "msgid" and "msgstr" in current:
                flush()
            current[key] = _unquote(literal, number)
        elif line.startswith('"') and key is not None:
            current[key] += _unquote(line, number)
        else:
            raise ValueError(f"line {number}: cannot read {raw!r}")
    flush()
    return messages


def _unquote(literal: str, number: int) -> str:
    if not (literal.startswith('"') and literal.endswith('"')):
        raise ValueError(f"line {number}: expected a quoted string")
    return ast.literal_eval(literal)


def compile_mo(messages: dict[str, str]) -> bytes:
    """GNU ``.mo`` bytes for ``messages`` (the format gettext reads)."""
    ids = sorted(messages)
    keys = [m.encode() for m in ids]
    values = [messages[m].encode() for m in ids]
    count = len(ids)
    keys_start = 7 * 4
    values_start = keys_start + count * 8
    data_start = values_start + count * 8
    offsets, data = [], b""
    for blob in keys + values:
        offsets.append((len(blob), data_start + len(data)))
        data += blob + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, keys_start, values_start, 0, 0)
    table = b"".join(struct.pack("<2I", length, offset) for length, offset in offsets)
    return header + table + data


def catalog_file(code: str, folder: Path = CATALOGS) -> Path:
    return Path(folder) / f"{code}.po"


@lru_cache(maxsize=None)
def translations(code: str, folder: Path = CATALOGS) -> gettext.NullTranslations:
    """The catalog for language ``code`` in ``folder`` (the kiosk's and the
    traveller's by default; an app with its own words passes its own
    folder); English (the ids) for ``en`` or an unknown code."""
    path = catalog_file(code, folder)
    if code == "en" or not path.exists():
        return gettext.NullTranslations()
    messages = parse_po(path.read_text(encoding="utf-8"))
    # The header entry (msgid "") declares the charset; always UTF-8 here.
    messages.setdefault("", "Content-Type: text/plain; charset=UTF-8\n")
    return gettext.GNUTranslations(io.BytesIO(compile_mo(messages)))


def translate(code: str, message: str, *, catalogs: Path = CATALOGS, **fields) -> str:
    """``message`` in language ``code`` (from the catalogs in ``catalogs``)
    with ``{fields}`` filled in."""
    text = translations(code, Path(catalogs)).gettext(message)
    return text.format(**fields) if fields else text
