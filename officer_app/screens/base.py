"""What every screen has: the running app, and one line for errors."""
from __future__ import annotations

from kivy.app import App
from kivy.properties import StringProperty
from kivy.uix.screenmanager import Screen


class DeskScreen(Screen):
    error = StringProperty("")

    @property
    def app(self):
        return App.get_running_app()

    def show_error(self, text: str) -> None:
        self.error = text

    def clear(self) -> None:
        self.error = ""
