"""What the officer sees on a screen, and whether it is all readable: no
text cut off, shortened with "...", wrapped inside a word or off the
screen, and in Dutch no English of the handheld's own catalog."""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from kivy.uix.label import Label
from kivy.uix.textinput import TextInput

from officer_app.wording import CATALOGS
from shared.i18n import parse_po
from tests.kivy_layout import broken_words, in_scroll_view
from tests.officer.catalog import used_messages

WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")


def _shown(widget) -> bool:
    while True:
        if widget.opacity == 0 or widget.width < 1 or widget.height < 1:
            return False
        if widget.parent is None or widget.parent is widget:
            return True
        widget = widget.parent


def visible_labels(root) -> list[Label]:
    """Labels and buttons with text that the officer can see under ``root``."""
    return [w for w in root.walk(restrict=True)
            if isinstance(w, Label) and w.text.strip() and _shown(w)]


def visible_hints(root) -> list[str]:
    return [w.hint_text for w in _hinted_fields(root)]


def _hinted_fields(root) -> list[TextInput]:
    return [w for w in root.walk(restrict=True)
            if isinstance(w, TextInput) and not w.text and w.hint_text and _shown(w)]


def hint_too_wide(field: TextInput) -> bool:
    """A one-line field's hint that runs past the field's edge."""
    from kivy.core.text import Label as CoreLabel

    if field.multiline:
        return False  # wrapped inside the field
    hint = CoreLabel(text=field.hint_text, font_size=field.font_size, font_name=field.font_name)
    hint.refresh()
    return hint.content_size[0] > field.width - field.padding[0] - field.padding[2] + 1


def _laid_out(label, text_size):
    """The label's text laid out again, without shortening or a line limit."""
    core = label._label
    options = dict(core.options)
    # The text as last set (options keep the one the label was made with).
    options.update(text=core.text, text_size=text_size, shorten=False, max_lines=0)
    again = type(core)(**options)
    again.refresh()
    return again


def cut_off(label) -> list[str]:
    """Why part of ``label``'s text cannot be read (empty if it all can)."""
    problems = []
    width = label.text_size[0]
    if label.shorten and width:
        needed = _laid_out(label, (None, None)).content_size[0]
        if needed > width + 1:
            problems.append(f"shortened: needs {needed} of {width} px")
    full = _laid_out(label, (width, None))
    if full.content_size[1] > label.height + 1 and not label.shorten:
        problems.append(f"too tall: needs {full.content_size[1]} of {label.height} px")
    if width is None and label.texture_size[0] > label.width + 1:
        problems.append(f"too wide: needs {label.texture_size[0]} of {label.width} px")
    problems += [f"word cut: {cut}" for cut in broken_words(label)]
    return problems


def off_screen(label, window_height: float) -> bool:
    """Outside a scrolled list, a text must be on the screen."""
    if in_scroll_view(label):
        return False
    y = label.to_window(label.x, label.y)[1]
    top = y + label.height
    return y < -1 or top > window_height + 1


def unreadable(root, window_height: float) -> list[tuple[str, str]]:
    """``(text, problem)`` for every visible text under ``root`` that is not
    wholly readable."""
    found = []
    for label in visible_labels(root):
        found += [(label.text, problem) for problem in cut_off(label)]
        if off_screen(label, window_height):
            found.append((label.text, "off the screen"))
    found += [(field.hint_text, "hint too wide") for field in _hinted_fields(root) if hint_too_wide(field)]
    return found


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(re.sub(r"\{\w+\}", " ", text))}


@cache
def english_only_words() -> frozenset[str]:
    """Words of the handheld's English texts that its Dutch never uses."""
    dutch = parse_po((Path(CATALOGS) / "nl.po").read_text(encoding="utf-8"))
    english = set().union(*(_words(m) for m in used_messages()))
    return frozenset(english - set().union(*(_words(t) for t in dutch.values())))


def english_in(texts, data_words: set[str]) -> list[tuple[str, list[str]]]:
    """Texts that hold words of the English catalog (data words, such as
    names and shops, aside)."""
    english = english_only_words()
    found = []
    for text in texts:
        words = sorted((_words(text) & english) - data_words)
        if words:
            found.append((text, words))
    return found


def words_of(*texts: str) -> set[str]:
    """The words of data (names, shops, goods, places) as the check compares them."""
    return set().union(*(_words(t) for t in texts)) if texts else set()
