"""``taxfree-officer``: start the customs officer's handheld app."""
from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from .config import OfficerConfig

    # Parse before Kivy is imported: Kivy reads sys.argv and opens a window
    # on import, which --help should not do.
    config = OfficerConfig.load(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.config import Config

    # A phone in portrait, 360 x 640 dp (the smallest handheld supported).
    Config.set("graphics", "width", "360")
    Config.set("graphics", "height", "640")
    Config.set("kivy", "exit_on_escape", "0")
    from .app import OfficerApp

    OfficerApp(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
