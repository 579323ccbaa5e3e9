"""Widgets every app can use."""
from __future__ import annotations

from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Line
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, ColorProperty, OptionProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.image import Image
from kivy.uix.label import Label

from shared.i18n import LANGUAGES

from .text import font_for, rtl_lines


class LanguageLabel(Label):
    """A label in the current language's font and direction.

    Set ``source_text`` (logical order) and ``language``; ``text`` is
    derived: for right-to-left languages it is shaped, wrapped and put in
    display order line by line, right-aligned. ``fixed_language`` pins a
    label to one language (the language buttons name themselves).
    """

    source_text = StringProperty("")
    language = StringProperty("en")
    fixed_language = StringProperty("")
    wrap = BooleanProperty(True)
    align = OptionProperty("start", options=["start", "center"])

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fbind("source_text", self._relayout)
        self.fbind("language", self._relayout)
        self.fbind("fixed_language", self._relayout)
        self.fbind("width", self._relayout)
        self.fbind("font_size", self._relayout)
        self.fbind("align", self._relayout)
        self._relayout()

    @property
    def effective_language(self) -> str:
        return self.fixed_language or self.language

    def _relayout(self, *_):
        lang = self.effective_language
        rtl = LANGUAGES[lang].rtl
        self.font_name = font_for(lang)
        self.halign = "center" if self.align == "center" else ("right" if rtl else "left")
        width = max(self.width - 2 * self.padding[0], 10) if self.wrap else None
        self.text_size = (width, None)
        if rtl and width:
            measure = CoreLabel(font_name=self.font_name, font_size=self.font_size)
            # A pixel of slack so Kivy's own wrapping never breaks a line again.
            self.text = rtl_lines(self.source_text, width - 2, lambda s: measure.get_extents(s)[0])
        elif rtl:
            self.text = rtl_lines(self.source_text, float("inf"), lambda s: 0)
        else:
            self.text = self.source_text


class DirectionRow(BoxLayout):
    """A horizontal row that runs right to left when ``rtl`` is set: the
    first child (an icon, a check box, the first of two buttons) stands at
    the right edge in Arabic, as the eye starts there."""

    rtl = BooleanProperty(False)

    def on_rtl(self, *_):
        self._trigger_layout()

    def do_layout(self, *args):
        super().do_layout(*args)
        if self.rtl and self.orientation == "horizontal":
            for child in self.children:
                child.x = self.x + (self.right - child.right)


class Preview(Image):
    """The camera preview: frames (numpy, greyscale or BGR) shown as they
    come, with a guide frame where the traveller holds the code."""

    guide_colour = ColorProperty((1, 1, 1, 0.9))

    def __init__(self, **kwargs):
        kwargs.setdefault("fit_mode", "contain")
        super().__init__(**kwargs)
        self._shape = None
        with self.canvas.after:
            self._guide_colour = Color(rgba=self.guide_colour)
            self._corners = [Line(width=4) for _ in range(4)]
        self.fbind("pos", self._draw_guide)
        self.fbind("size", self._draw_guide)
        self._draw_guide()

    def show(self, frame) -> None:
        """Display one frame (call on the UI thread)."""
        h, w = frame.shape[:2]
        fmt = "luminance" if frame.ndim == 2 else "bgr"
        if self.texture is None or self._shape != (w, h, fmt):
            texture = Texture.create(size=(w, h), colorfmt=fmt)
            texture.flip_vertical()  # image rows run top-down, GL's bottom-up
            self.texture = texture
            self._shape = (w, h, fmt)
        self.texture.blit_buffer(frame.tobytes(), colorfmt=fmt, bufferfmt="ubyte")
        self.canvas.ask_update()

    def clear(self) -> None:
        self.texture = None
        self._shape = None

    def _draw_guide(self, *_):
        side = min(self.width, self.height) * 0.6
        x0, y0 = self.center_x - side / 2, self.center_y - side / 2
        arm = side * 0.18
        corners = [
            [x0, y0 + arm, x0, y0, x0 + arm, y0],
            [x0 + side - arm, y0, x0 + side, y0, x0 + side, y0 + arm],
            [x0 + side, y0 + side - arm, x0 + side, y0 + side, x0 + side - arm, y0 + side],
            [x0 + arm, y0 + side, x0, y0 + side, x0, y0 + side - arm],
        ]
        for line, points in zip(self._corners, corners):
            line.points = points
