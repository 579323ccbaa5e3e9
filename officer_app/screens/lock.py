"""The handheld locked after idle time: the officer's password unlocks it
(checked on the handheld, so it works without network)."""
from __future__ import annotations

from .base import DeskScreen


class OfficerLockScreen(DeskScreen):
    def on_enter(self, *_):
        self.ids.password.focus = True

    def submit(self) -> None:
        self.error = ""
        self.app.unlock(self.ids.password.text)

    def clear(self) -> None:
        super().clear()
        self.ids.password.text = ""


SCREEN = OfficerLockScreen
