"""Handheld scanners and document readers that "type" what they read.

A keyboard-wedge device sends characters fast, usually ending with Enter
(CR or LF). A passport reader sends the two 44-character lines of the zone
with Enter after each; a QR or boarding-pass scanner sends one line. Some
devices send no terminator at all. People do not type at kiosks (there is
no keyboard), so any burst of characters is a scan.

:class:`WedgeBuffer` collects characters and says when a complete scan has
arrived: at Enter, unless the text so far is the first line of a passport
zone (then it waits for the second line), or after a pause with no
characters (devices without a terminator).
"""
from __future__ import annotations

import time
from typing import Callable

from shared import mrz

MRZ_LINE = mrz.LINE_LENGTH


class WedgeBuffer:
    """Turns a stream of typed characters into complete scans."""

    def __init__(self, pause: float = 0.3, clock: Callable[[], float] = time.monotonic):
        self.pause = pause
        self._clock = clock
        self._lines: list[str] = []
        self._current = ""
        self._last = 0.0

    def type(self, text: str) -> list[str]:
        """Feed typed characters (may include CR/LF); returns complete scans."""
        done = []
        for ch in text:
            if ch in "\r\n":
                done += self.enter()
            elif ch.isprintable():
                self._current += ch
        self._last = self._clock()
        return done

    def enter(self) -> list[str]:
        """Enter was pressed: a scan is complete unless a passport's first
        line just arrived."""
        if not self._current:
            return []
        self._lines.append(self._current)
        self._current = ""
        first = self._lines[0]
        if len(self._lines) == 1 and len(first) == MRZ_LINE and first.upper().startswith("P"):
            return []  # the second line follows
        return [self._flush()]

    def idle(self) -> list[str]:
        """Call now and then: a scan without a terminator completes after a
        pause; so does a lone first passport line (it will not parse, and
        the traveller is told to scan again)."""
        if (self._lines or self._current) and self._clock() - self._last >= self.pause:
            if self._current:
                self._lines.append(self._current)
                self._current = ""
            return [self._flush()]
        return []

    def _flush(self) -> str:
        text = "\n".join(self._lines)
        self._lines = []
        return text

    def clear(self) -> None:
        self._lines, self._current = [], ""
