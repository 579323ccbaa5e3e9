"""Widgets the screens share: labels that speak every language, buttons,
verdict icons drawn as shapes (no icon font to miss a glyph), the camera
preview with its guide frame, and the staff status badge."""
from __future__ import annotations

from kivy.graphics import Color, Ellipse, Line, Rectangle, RoundedRectangle
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    NumericProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kivy_common.widgets import LanguageLabel, Preview  # noqa: F401 - Preview: kv rules and the screens use it

from . import desk

# Colour plus icon plus text, never colour alone. Dark text on amber, white
# on the others (contrast >= 4.5:1).
KIND_COLOURS = {
    desk.VALIDATED: (0.06, 0.50, 0.22, 1),
    desk.LAST_EXIT_OK: (0.06, 0.50, 0.22, 1),
    desk.CHECK_REQUIRED: (0.98, 0.70, 0.05, 1),
    desk.NOT_LAST_EXIT: (0.98, 0.70, 0.05, 1),
    desk.UNVERIFIED: (0.98, 0.70, 0.05, 1),
    desk.REFUSED: (0.75, 0.09, 0.09, 1),
    desk.UNREADABLE: (0.75, 0.09, 0.09, 1),
    desk.RECORDED: (0.10, 0.35, 0.70, 1),
    desk.DUPLICATE: (0.35, 0.38, 0.42, 1),
    desk.NO_OPEN_FORMS: (0.35, 0.38, 0.42, 1),
    desk.OUT_OF_SERVICE: (0.35, 0.38, 0.42, 1),
    desk.PAIRED: (0.06, 0.50, 0.22, 1),
    desk.PAIRING_REFUSED: (0.75, 0.09, 0.09, 1),
}
DARK_TEXT_KINDS = {desk.CHECK_REQUIRED, desk.NOT_LAST_EXIT, desk.UNVERIFIED}
ICONS = {
    desk.VALIDATED: "tick", desk.LAST_EXIT_OK: "tick",
    desk.CHECK_REQUIRED: "desk", desk.NOT_LAST_EXIT: "warning", desk.UNVERIFIED: "desk",
    desk.REFUSED: "cross", desk.UNREADABLE: "cross",
    desk.RECORDED: "clock", desk.DUPLICATE: "repeat",
    desk.NO_OPEN_FORMS: "info", desk.OUT_OF_SERVICE: "info",
    desk.PAIRED: "tick", desk.PAIRING_REFUSED: "cross",
}


def text_colour(kind: str):
    return (0.08, 0.08, 0.08, 1) if kind in DARK_TEXT_KINDS else (1, 1, 1, 1)


class KioskLabel(LanguageLabel):
    """The kiosk's label (its looks are in widgets.kv)."""


class KioskButton(ButtonBehavior, KioskLabel):
    """A big touch target with a rounded background."""

    background = ColorProperty((0.12, 0.30, 0.55, 1))
    pressed = ColorProperty((0.08, 0.20, 0.40, 1))

    def __init__(self, **kwargs):
        kwargs.setdefault("align", "center")
        super().__init__(**kwargs)
        with self.canvas.before:
            self._colour = Color(rgba=self.background)
            self._shape = RoundedRectangle(radius=[18])
        self.fbind("pos", self._redraw)
        self.fbind("size", self._redraw)
        self.fbind("state", self._redraw)
        self.fbind("background", self._redraw)
        self._redraw()

    def _redraw(self, *_):
        self._colour.rgba = self.pressed if self.state == "down" else self.background
        self._shape.pos = self.pos
        self._shape.size = self.size


class VerdictIcon(Widget):
    """A filled circle in the verdict's colour with a white symbol."""

    kind = StringProperty(desk.VALIDATED)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("pos", "size", "kind"):
            self.fbind(name, self._redraw)
        self._redraw()

    @property
    def symbol(self) -> str:
        return ICONS.get(self.kind, "info")

    def _redraw(self, *_):
        self.canvas.clear()
        d = min(self.width, self.height)
        x0, y0 = self.center_x - d / 2, self.center_y - d / 2
        w = max(d * 0.09, 2)
        with self.canvas:
            Color(rgba=KIND_COLOURS.get(self.kind, KIND_COLOURS[desk.UNREADABLE]))
            Ellipse(pos=(x0, y0), size=(d, d))
            Color(rgba=text_colour(self.kind))

            def p(fx, fy):
                return [x0 + fx * d, y0 + fy * d]

            s = self.symbol
            if s == "tick":
                Line(points=p(0.27, 0.52) + p(0.43, 0.34) + p(0.74, 0.68), width=w, cap="round", joint="round")
            elif s == "cross":
                Line(points=p(0.3, 0.3) + p(0.7, 0.7), width=w, cap="round")
                Line(points=p(0.3, 0.7) + p(0.7, 0.3), width=w, cap="round")
            elif s in ("warning", "info", "desk"):
                top, bottom = (0.76, 0.42) if s != "info" else (0.62, 0.24)
                dot = 0.27 if s != "info" else 0.74
                Line(points=p(0.5, top) + p(0.5, bottom), width=w, cap="round")
                Ellipse(pos=(x0 + 0.5 * d - w, y0 + dot * d - w), size=(2 * w, 2 * w))
                if s == "desk":  # an arrow to the desk under the exclamation mark
                    Line(points=p(0.62, 0.16) + p(0.78, 0.27) + p(0.62, 0.38), width=w * 0.6, cap="round")
            elif s == "clock":
                Line(circle=(self.center_x, self.center_y, d * 0.3), width=w * 0.7)
                Line(points=p(0.5, 0.68) + p(0.5, 0.5) + p(0.63, 0.42), width=w * 0.7, cap="round")
            elif s == "repeat":
                Line(circle=(self.center_x, self.center_y, d * 0.27, 30, 330), width=w * 0.7)
                Line(points=p(0.5, 0.86) + p(0.6, 0.77) + p(0.5, 0.68), width=w * 0.7)


class StatusBadge(Label):
    """For staff: online or offline, how many scans wait to be sent and how
    many the API refused; a touch opens the staff screen that lists those.
    In English on purpose: staff read it, travellers need not."""

    online = BooleanProperty(True)
    pending = NumericProperty(0)
    refused = NumericProperty(0)
    __events__ = ("on_open",)

    def __init__(self, **kwargs):
        kwargs.setdefault("font_size", "14sp")
        kwargs.setdefault("size_hint", (None, None))
        super().__init__(**kwargs)
        with self.canvas.before:
            self._bg = Color(rgba=(0, 0, 0, 0.55))
            self._rect = RoundedRectangle(radius=[8])
            self._dot_colour = Color()
            self._dot = Ellipse()
        for name in ("online", "pending", "refused", "pos", "size", "texture_size"):
            self.fbind(name, self._update)
        self._update()

    def on_touch_down(self, touch):
        if self.collide_point(*touch.pos):
            self.dispatch("on_open")
            return True
        return super().on_touch_down(touch)

    def on_open(self):
        """The badge was touched."""

    def _update(self, *_):
        self.text = (("online" if self.online else "OFFLINE") + (f" · {self.pending} waiting" if self.pending else "")
                     + (f" · {self.refused} refused" if self.refused else ""))
        self.size = (self.texture_size[0] + 44, self.texture_size[1] + 14)
        self._rect.pos, self._rect.size = self.pos, self.size
        self._dot_colour.rgba = (0.2, 0.8, 0.3, 1) if self.online else (0.95, 0.3, 0.2, 1)
        r = 6
        self._dot.pos = (self.x + 12, self.center_y - r)
        self._dot.size = (2 * r, 2 * r)


class Band(Widget):
    """A coloured panel behind a result card."""

    colour = ColorProperty((0, 0, 0, 0))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.canvas.before:
            self._c = Color(rgba=self.colour)
            self._r = Rectangle()
        for name in ("pos", "size", "colour"):
            self.fbind(name, self._update)
        self._update()

    def _update(self, *_):
        self._c.rgba = self.colour
        self._r.pos, self._r.size = self.pos, self.size
