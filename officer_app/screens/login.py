"""Log in with the officer's own account."""
from __future__ import annotations

from kivy.properties import StringProperty

from .. import wording
from ..wording import _
from .base import DeskScreen


class OfficerLoginScreen(DeskScreen):
    waiting_text = StringProperty("")

    def on_pre_enter(self, *_args):
        # Decisions saved offline survive a logout and a restart; say so,
        # without naming whose they are.
        waiting = self.app.decisions.count()
        self.waiting_text = wording.plural(
            waiting, _("{count} decision saved on this handheld will be sent when its officer logs in."),
            _("{count} decisions saved on this handheld will be sent when its officer logs in.")) if waiting else ""

    def submit(self) -> None:
        self.error = ""
        self.app.sign_in(self.ids.username.text, self.ids.password.text)

    def clear(self) -> None:
        super().clear()
        self.ids.password.text = ""


SCREEN = OfficerLoginScreen
