"""``taxfree-kiosk``: start the kiosk app.

Settings come from the INI file, the environment and the flags (see
``kiosk_app.config``). Full screen unless ``--windowed``.
"""
from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from .config import from_args

    config = from_args(sys.argv[1:] if argv is None else argv)
    # Kivy reads these when it is first imported: our flags are ours, not
    # Kivy's, and a kiosk keeps no log files of travellers' scans.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    from kivy.config import Config

    if config.windowed:
        Config.set("graphics", "fullscreen", "0")
        Config.set("graphics", "width", "1280")
        Config.set("graphics", "height", "800")
    else:
        Config.set("graphics", "fullscreen", "auto")
        Config.set("graphics", "show_cursor", "0")
    Config.set("kivy", "exit_on_escape", "0" if not config.windowed else "1")
    # A touch screen, not a mouse: no red multi-touch emulation dots.
    Config.set("input", "mouse", "mouse,disable_multitouch")

    from .app import KioskApp

    KioskApp(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
