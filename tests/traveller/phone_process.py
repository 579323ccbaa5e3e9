"""The real traveller's app in a process of its own, started through its
entry point (``traveller_app.main``) in an offscreen window, doing one
thing as a traveller would and saying on stdout what the screens show.

``python -m tests.traveller.phone_process ACTION --data-dir DIR --api-url URL``

- ``enter``: type the passport's two zone lines, press "Use these lines",
  keep two forms in the wallet, print ``READY {...}`` and keep running
  (the test kills it).
- ``report``: print ``SHOWN {...}``: the screen, the passport line, the
  form rows, and what the wallet holds; then quit.
- ``forget``: press "Forget me", print ``FORGOTTEN {...}``; then quit.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile


def _environment() -> None:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    os.environ.setdefault("KIVY_USE_DEFAULTCONFIG", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")


def say(word: str, app) -> None:
    screen = app.screens["forms"]
    shown = {
        "screen": app.manager.current,
        "passport_text": app.passport_text,
        "rows": [row.text for row in reversed(screen.ids.rows.children)],
        "wallet_passport": app.wallet.passport.to_json() if app.wallet.passport else None,
        "wallet_forms": [f.id for f in app.wallet.forms],
    }
    print(word, json.dumps(shown), flush=True)


def steps(action: str):
    """The traveller's actions, one per frame once the previous one settled."""
    from kivy.app import App

    from tests.traveller.samples import ZONE, open_forms

    app = App.get_running_app()
    while app is None or not getattr(app, "screens", None):
        yield
        app = App.get_running_app()
    while app.background.busy:  # the start's refresh (no API here: it finds none)
        yield
    if action == "enter":
        passport = app.screens["passport"]
        passport.ids.zone.text = ZONE
        passport.ids.use_zone.dispatch("on_release")
        while app.background.busy:
            yield
        app.wallet.keep_forms(open_forms())  # as a refresh with the API would have kept them
        app.show_state()
        yield
        say("READY", app)
        while True:  # until killed
            yield
    elif action == "report":
        yield
        say("SHOWN", app)
        app.stop()
    elif action == "forget":
        app.go("passport")
        yield
        app.screens["passport"].ids.forget.dispatch("on_release")
        while app.background.busy:
            yield
        yield
        say("FORGOTTEN", app)
        app.stop()


def main(argv: list[str]) -> int:
    _environment()
    action, rest = argv[0], argv[1:]
    from kivy.clock import Clock

    from traveller_app import main as entry

    walk = steps(action)

    def step(_dt):
        try:
            next(walk)
        except StopIteration:
            return False
        return True

    Clock.schedule_interval(step, 0.05)
    return entry.main(rest + ["--camera", "none"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
