"""Is a character drawn as itself or as the font's "missing glyph" box?

Kivy's SDL2 text provider has no font fallback: a character the label's
font lacks is drawn as that font's .notdef box. A character is drawn in
isolation and compared with a code point no font has (U+10FFFD); every
missing character looks exactly like it.
"""
from __future__ import annotations

from functools import lru_cache

NO_FONT_HAS_IT = "\U0010fffd"


@lru_cache(maxsize=None)
def glyph_bitmap(char: str, font: str) -> bytes:
    from kivy.core.text import Label as CoreLabel

    label = CoreLabel(text=char, font_name=font, font_size=40)
    label.refresh()
    return label.texture.pixels


def boxes(text: str, font: str) -> list[str]:
    """The characters of ``text`` that ``font`` draws as the missing-glyph box."""
    missing = glyph_bitmap(NO_FONT_HAS_IT, font)
    return sorted(c for c in set(text) if not c.isspace() and glyph_bitmap(c, font) == missing)
