"""PNG screenshots of every kiosk screen in several languages, for review.

``python -m kiosk_app.screenshots [OUT_DIR] [LANG ...]`` (default
``screenshots/kiosk``, languages en nl zh_CN ar ja ru). Runs headless with
SDL's offscreen driver when there is no display; needs no API: the result
screens are filled with sample outcomes of every kind.
"""
from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from pathlib import Path

SAMPLES = [
    ("validated", dict(kind="validated", form_id="NL7KQ3X9PD", payer="Refunds Inc")),
    ("check_required", dict(kind="check_required", form_id="NL4TR8W2MC", desk_location="Departures 2")),
    ("refused", dict(kind="refused", form_id="NL2BX7Q4KA", reason_code="deadline_passed",
                     export_deadline=date(2026, 2, 28))),
    ("recorded", dict(kind="recorded", form_id="NL9PD3KQ7X")),
    ("unverified", dict(kind="unverified", form_id="NL5MW2R8TQ", desk_location="Departures 2")),
    ("not_last_exit", dict(kind="not_last_exit",
                           destination="Charles de Gaulle International Airport (CDG, FR)")),
]


def _prepare_environment() -> None:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    os.environ.setdefault("KIVY_USE_DEFAULTCONFIG", "1")


def capture(out_dir: Path, languages=("en", "nl", "zh_CN", "ar", "ja", "ru"), size=(1280, 800)) -> list[Path]:
    """Write the PNGs; returns their paths. Call from a process that may own
    the Kivy window (tests do: it is the same offscreen window)."""
    _prepare_environment()
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from . import desk
    from .app import KioskApp
    from .config import KioskConfig
    from .wording import Wording

    EventLoop.ensure_window()
    Window.size = size
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        app = KioskApp(KioskConfig(api_url="http://127.0.0.1:9", device_token="demo", camera="none",
                                   data_dir=Path(data), sound=False, desk_location="Departures 2, next to gate D1",
                                   sync_interval=3600))
        app._run_prepare()
        written = []

        def snap(name):
            for _ in range(3):
                EventLoop.idle()
            path = out_dir / f"{name}.png"
            app.root.export_to_png(str(path))
            written.append(path)

        try:
            for lang in languages:
                app.choose_language(lang)
                app.manager.current = "welcome"
                snap(f"{lang}-welcome")
                app.manager.current = "scan"
                snap(f"{lang}-scan")
                wording = Wording(lang)
                for name, fields in SAMPLES:
                    app.screens["result"].show([desk.Outcome(**fields)], wording)
                    app.manager.current = "result"
                    snap(f"{lang}-result-{name}")
                forms = [desk.Outcome(**f) for _, f in SAMPLES[:4]]
                app.screens["summary"].show(forms, wording)
                app.manager.current = "summary"
                snap(f"{lang}-summary")
                app.manager.current = "help"
                snap(f"{lang}-help")
        finally:
            app.dispatch("on_stop")  # shuts down; kv's `app` proxy lets go of it
            Window.remove_widget(app.root)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path("screenshots/kiosk")
    languages = argv[1:] or ("en", "nl", "zh_CN", "ar", "ja", "ru")
    for path in capture(out, languages):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
