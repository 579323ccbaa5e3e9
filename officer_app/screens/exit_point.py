"""Choose the exit point whose desk the officer is on duty at: the API
records the duty and takes the officer's decisions only on that exit
point's checks."""
from __future__ import annotations

from kivy.factory import Factory

from ..wording import Phrase, _
from .base import DeskScreen


class OfficerExitPointScreen(DeskScreen):
    def on_pre_enter(self, *_args):
        self.ids.points.clear_widgets()
        self.error = ""
        self.app.load_exit_points()

    def show(self, exit_points: list[dict]) -> None:
        box = self.ids.points
        box.clear_widgets()
        preferred = self.app.settings.exit_point
        # The desk's own exit point (from the settings) first.
        exit_points = sorted(exit_points, key=lambda p: (p["code"] != preferred, p["code"]))
        for point in exit_points:
            place = f" · {point['desk_location']}" if point.get("desk_location") else ""
            button = Factory.DeskButton(
                text=f"{point['code']}  {point['name']}{place}",
                tone="primary" if point["code"] == preferred else "light",
                height="72dp")
            button.exit_point = point
            button.bind(on_release=lambda b: self.app.choose_exit_point(b.exit_point))
            box.add_widget(button)
        if not exit_points:
            self.error = Phrase(_("No exit points are set up. Ask an administrator."))


SCREEN = OfficerExitPointScreen
