"""``taxfree-traveller``: start the traveller's app (a phone-sized window on a desktop)."""
from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from .config import SimulationError, load

    config = load(sys.argv[1:] if argv is None else argv)
    try:
        presence = config.presence()
    except SimulationError as exc:
        print(f"taxfree-traveller: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")  # no log files with travellers' data
    from kivy.config import Config

    Config.set("graphics", "width", "360")
    Config.set("graphics", "height", "640")
    from .app import TravellerApp

    TravellerApp(config, presence=presence).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
