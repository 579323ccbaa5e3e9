"""Layout checks shared by the Kivy apps' screen tests (traveller, officer):
whether a widget sits in a scrolled list, and words the wrapping cut in two."""
from __future__ import annotations

import unicodedata
from itertools import pairwise

from kivy.uix.scrollview import ScrollView


def in_scroll_view(widget) -> bool:
    while widget.parent is not None and widget.parent is not widget:
        widget = widget.parent
        if isinstance(widget, ScrollView):
            return True
    return False


def broken_words(label) -> list[str]:
    """Words the label's wrapping cut in two ("Обнови" / "ть"): Kivy breaks a
    word that does not fit its line anywhere. Chinese and Japanese may break
    between any two characters; Arabic is broken at spaces before drawing."""
    lines = [("".join(w.text for w in line.words), line.line_wrap) for line in label._label._cached_lines]
    cut = []
    for (before, _), (after, wrapped) in pairwise(lines):
        if not (wrapped and before and after) or before[-1] == " " or after[0] == " ":
            continue
        tail, head = before.rsplit(" ", 1)[-1], after.split(" ", 1)[0]
        wide = unicodedata.east_asian_width(tail[-1]) in "WF" or unicodedata.east_asian_width(head[0]) in "WF"
        if not wide and (tail + head) in label.text.replace("\n", " "):
            cut.append(f"{tail}|{head}")
    return cut
