"""Glyphs and direction: which font draws a language, and Arabic shaped and
laid out right to left.

Kivy's SDL2 text provider draws one font per label and has no font
fallback, so each language gets one font that covers all of its script and
the Latin of shop names and form ids:

- Chinese, Japanese, Korean: Noto Sans CJK (Debian ``fonts-noto-cjk``).
- Arabic: DejaVu Sans, which Kivy ships: Arabic *and* Latin in one font
  (Noto's Arabic faces have no Latin letters, so "Refunds Inc" in an
  Arabic sentence would be boxes).
- Everything else (Latin, Cyrillic, Turkish): Roboto, Kivy's default.

Arabic is shaped here, not by the text provider: letters become their
contextual presentation forms (``arabic_reshaper``), each line is put in
visual order by the Unicode bidirectional algorithm (``python-bidi``) and
drawn left to right, right-aligned. Lines are broken *before* reordering
(on the logical text), so a wrapped paragraph reads top to bottom.
Kivy 2.3's own HarfBuzz path (``font_direction='rtl'``) measures text with
whatever direction the font object last rendered with, which misplaces
wrapped lines; this path has no such state.
Values put into a translated sentence (dates, form ids, names) are wrapped
in Unicode isolates so "2026-02-28" stays one left-to-right run.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Callable

from shared.i18n import LANGUAGES

HERE = Path(__file__).parent

CJK_CANDIDATES = (
    HERE / "fonts" / "NotoSansCJK-Regular.ttc",
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
)

LRI, PDI = "\u2066", "\u2069"
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def _kivy_font(name: str) -> str:
    import kivy

    return str(Path(kivy.__file__).parent / "data" / "fonts" / name)


@lru_cache(maxsize=None)
def font_for(language: str) -> str:
    """The font file that draws every glyph ``language`` needs."""
    script = LANGUAGES[language].script
    if script in ("Hans", "Jpan", "Kore"):
        for path in CJK_CANDIDATES:
            if path.exists():
                return str(path)
        raise FileNotFoundError(
            "no CJK font: install the Debian package fonts-noto-cjk "
            "(scripts/system-packages.sh) or put NotoSansCJK-Regular.ttc in kivy_common/fonts/")
    if script == "Arab":
        return _kivy_font("DejaVuSans.ttf")
    return _kivy_font("Roboto-Regular.ttf")


def isolate(value: object) -> str:
    """``value`` as a left-to-right island inside a right-to-left sentence."""
    return f"{LRI}{value}{PDI}"


def visual_line(line: str) -> str:
    """One logical line of Arabic (or mixed) text in display order, shaped."""
    import arabic_reshaper
    from bidi import get_display

    return get_display(arabic_reshaper.reshape(mirror_brackets(line)), base_dir="R").translate(_BIDI_CONTROLS)


_OPENING, _CLOSING = "([{", ")]}"
_ISOLATE_STARTS, _ISOLATE_END = "\u2066\u2067\u2068", "\u2069"


def _strong(char: str) -> str | None:
    kind = unicodedata.bidirectional(char)
    return "R" if kind in ("R", "AL") else "L" if kind == "L" else None


def mirror_brackets(line: str) -> str:
    """Brackets of a right-to-left line swapped where they will be drawn
    right to left: python-bidi reorders but does not mirror (rule L4 of
    UAX #9), so "(CN)" after Arabic would be drawn ")CN(".

    A pair outside the isolated values (which stay as they are) runs right
    to left, as rule N0 resolves it, when it holds Arabic, or holds only
    Latin but follows Arabic (or nothing), or holds neither.
    """
    depth, outside, pairs, open_at = 0, [], [], []
    for i, char in enumerate(line):
        if char in _ISOLATE_STARTS:
            depth += 1
        elif char == _ISOLATE_END:
            depth = max(depth - 1, 0)
        elif depth == 0:
            outside.append(i)
            if char in _OPENING:
                open_at.append(i)
            elif char in _CLOSING and open_at and line[open_at[-1]] == _OPENING[_CLOSING.index(char)]:
                pairs.append((open_at.pop(), i))
    chars = list(line)
    for start, end in pairs:
        inside = {_strong(line[i]) for i in outside if start < i < end} - {None}
        before = [k for k in (_strong(line[i]) for i in outside if i < start) if k]
        if "R" in inside or not before or before[-1] == "R":
            chars[start], chars[end] = line[end], line[start]
    return "".join(chars)


def rtl_lines(text: str, width: float, measure: Callable[[str], float]) -> str:
    """``text`` broken into lines no wider than ``width`` (as ``measure``
    says of the drawn line), each in display order; joined by newlines.

    A word wider than the line stays on a line of its own.
    """
    out = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and measure(visual_line(candidate)) > width:
                out.append(visual_line(line))
                line = word
            else:
                line = candidate
        out.append(visual_line(line))
    return "\n".join(out)
