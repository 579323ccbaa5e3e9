"""Widgets the officer's screens share (their looks are in widgets.kv).

Large touch targets (at least 56 dp high), state shown by colour plus a drawn
icon plus text, never colour alone. Icons are drawn as shapes, so no icon
font can be missing a glyph.
"""
from __future__ import annotations

from kivy.graphics.texture import Texture
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    OptionProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.textinput import TextInput
from kivy.uix.widget import Widget

from .wording import Phrase, _

# Tones: (background, text). Dark text on amber; white on the others
# (contrast at least 4.5:1).
TONES = {
    "primary": ((0.10, 0.35, 0.70, 1), (1, 1, 1, 1)),
    "success": ((0.06, 0.50, 0.22, 1), (1, 1, 1, 1)),
    "warning": ((0.98, 0.70, 0.05, 1), (0.08, 0.08, 0.08, 1)),
    "danger": ((0.75, 0.09, 0.09, 1), (1, 1, 1, 1)),
    "neutral": ((0.35, 0.38, 0.42, 1), (1, 1, 1, 1)),
    "light": ((0.87, 0.89, 0.92, 1), (0.08, 0.08, 0.08, 1)),
}
DISABLED = ((0.80, 0.81, 0.83, 1), (0.40, 0.40, 0.42, 1))
INK = (0.08, 0.10, 0.14, 1)
MUTED = (0.33, 0.36, 0.40, 1)


class DeskButton(Button):
    """A large flat button in one of the TONES, with an optional icon."""

    tone = OptionProperty("primary", options=list(TONES))
    icon = OptionProperty("", options=["", "tick", "cross", "half", "back", "camera", "lock", "search"])
    fill = ColorProperty(TONES["primary"][0])
    ink = ColorProperty(TONES["primary"][1])

    def on_kv_post(self, base_widget):
        self._paint()
        self.bind(tone=self._paint, disabled=self._paint, state=self._paint)

    def _paint(self, *_args):
        fill, ink = DISABLED if self.disabled else TONES[self.tone]
        if self.state == "down" and not self.disabled:
            fill = tuple(c * 0.8 for c in fill[:3]) + (1,)
        self.fill, self.ink = fill, ink


class DeskIcon(Widget):
    """A small drawn icon: tick, cross, half (partial), dot, clock, offline, warning."""

    kind = OptionProperty("dot", options=["tick", "cross", "half", "dot", "clock", "offline", "warning", ""])
    ink = ColorProperty((1, 1, 1, 1))


class DeskText(Label):
    """A label that wraps to its width and grows to its text's height."""

    ink = ColorProperty(INK)


class DeskBadge(BoxLayout):
    """DeskIcon plus text on a coloured pill (a status, a rule that fired)."""

    text = StringProperty("")
    kind = StringProperty("dot")
    tone = OptionProperty("neutral", options=list(TONES))


class DeskField(TextInput):
    """A large text field."""


class DeskError(BoxLayout):
    """A problem to fix, with a warning icon; takes no room when empty."""

    text = StringProperty("")
    tone = OptionProperty("danger", options=list(TONES))


class DeskTopBar(BoxLayout):
    title = StringProperty("")
    subtitle = StringProperty("")
    back = BooleanProperty(False)
    languages = BooleanProperty(False)  # shows the NL | EN switch

    def __init__(self, **kwargs):
        self.register_event_type("on_back")
        super().__init__(**kwargs)

    def on_back(self, *_args):
        pass


class DeskLanguageSwitch(BoxLayout):
    """NL | EN: the officer's language, for every screen at once."""


class DeskStatus(DeskBadge):
    """Online / offline, and how many decisions wait to be sent."""

    online = BooleanProperty(True)
    waiting = NumericProperty(0)

    def on_kv_post(self, base_widget):
        self.bind(online=self._update, waiting=self._update)
        self._update()

    def _update(self, *_args):
        if not self.online:
            self.kind, self.tone = "offline", "warning"
            self.text = (Phrase(_("Offline · {count} to send"), count=self.waiting) if self.waiting
                         else Phrase(_("Offline")))
        elif self.waiting:
            self.kind, self.tone, self.text = "clock", "warning", Phrase(_("{count} to send"), count=self.waiting)
        else:
            self.kind, self.tone, self.text = "tick", "success", Phrase(_("Online"))


class DeskNav(BoxLayout):
    """Queue, Find, History, Lock: always in the same place."""

    current = StringProperty("")
    font_size = NumericProperty(16)


class DeskTravellerCard(ButtonBehavior, BoxLayout):
    """One traveller in the queue (a RecycleView item). Its texts are shown
    in ``language``, which comes with its data: a RecycleView reuses item
    widgets, so they must not depend on anything but their data."""

    index = NumericProperty(0)
    language = StringProperty("en")
    name = StringProperty("")
    passport = StringProperty("")
    waiting = StringProperty("")
    forms = StringProperty("")
    total = StringProperty("")
    rules = StringProperty("")
    owner = ObjectProperty(None, allownone=True)

    def on_release(self):
        if self.owner is not None:
            self.owner.open_traveller(self.index)


class DeskHistoryRow(ButtonBehavior, BoxLayout):
    """One decision in the history (a RecycleView item), in ``language``
    (with its data, as for DeskTravellerCard)."""

    index = NumericProperty(0)
    language = StringProperty("en")
    time = StringProperty("")
    form_id = StringProperty("")
    outcome = StringProperty("")
    kind = StringProperty("tick")
    tone = StringProperty("success")
    name = StringProperty("")
    state_text = StringProperty("")
    owner = ObjectProperty(None, allownone=True)

    def on_release(self):
        if self.owner is not None:
            self.owner.open_entry(self.index)


class DeskPresenceToggle(ButtonBehavior, BoxLayout):
    """Present / not present for one line: the whole row half is the target."""

    present = BooleanProperty(True)
    line = NumericProperty(0)
    locked = BooleanProperty(False)

    def on_release(self):
        if not self.locked:
            self.present = not self.present


class DeskLineRow(BoxLayout):
    """One line of a form: what it is, and the officer's present toggle."""

    line = NumericProperty(0)
    title = StringProperty("")
    details = StringProperty("")
    present = BooleanProperty(True)
    locked = BooleanProperty(False)


class DeskFormCard(BoxLayout):
    """One form on the check screen: header, lines, and the outcome buttons."""

    form_id = StringProperty("")
    header = StringProperty("")
    details = StringProperty("")
    rules = StringProperty("")
    status_text = StringProperty("")
    status_kind = StringProperty("dot")
    status_tone = StringProperty("neutral")
    decidable = BooleanProperty(False)
    openable = BooleanProperty(False)  # not validated yet: a check can be opened here
    open_text = StringProperty("")
    present_count = NumericProperty(0)
    line_count = NumericProperty(0)
    lines_box = ObjectProperty(None)
    owner = ObjectProperty(None, allownone=True)

    def presence(self) -> dict[int, bool]:
        return {row.line: row.present for row in self.line_rows()}

    def line_rows(self) -> list[DeskLineRow]:
        return [w for w in reversed(self.lines_box.children) if isinstance(w, DeskLineRow)]

    def recount(self, *_args):
        self.present_count = sum(1 for row in self.line_rows() if row.present)

    def choose(self, outcome: str):
        if self.owner is not None:
            self.owner.choose(self, outcome)

    def open_check(self):
        if self.owner is not None:
            self.owner.open_check(self)


class DeskComparison(BoxLayout):
    """One field of the form beside the passport read, marked if different."""

    label = StringProperty("")
    form_value = StringProperty("")
    passport_value = StringProperty("")
    matches = BooleanProperty(True)


class DeskSentLine(BoxLayout):
    """One line as the confirmation shows it: present or NOT present."""

    text = StringProperty("")
    present = BooleanProperty(True)


class DeskCamera(Image):
    """Shows the newest camera frame (greyscale or BGR numpy array)."""

    active = BooleanProperty(False)
    guide = ListProperty([0.06, 0.50, 0.22, 1])

    def show(self, frame) -> None:
        height, width = frame.shape[:2]
        colorfmt = "luminance" if frame.ndim == 2 else "bgr"
        texture = self.texture
        if texture is None or texture.size != (width, height) or texture.colorfmt != colorfmt:
            texture = Texture.create(size=(width, height), colorfmt=colorfmt)
            texture.flip_vertical()
        texture.blit_buffer(frame.tobytes(), colorfmt=colorfmt, bufferfmt="ubyte")
        self.texture = texture
        self.canvas.ask_update()
