"""PNG screenshots of every traveller screen, for review.

``python -m traveller_app.screenshots [OUT_DIR]`` (default
``screenshots/traveller``): every screen at 360x640 and 412x915 dp in en,
nl, zh_CN, ar, ja and ru, headless. Needs no API: the wallet is filled with
sample forms and the result screen with sample verdicts.
"""
from __future__ import annotations

import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

LANGUAGES = ("en", "nl", "zh_CN", "ar", "ja", "ru")
SIZES = ((360, 640), (412, 915))
DENSITY = 2


def _prepare_environment() -> None:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    os.environ.setdefault("KIVY_USE_DEFAULTCONFIG", "1")
    os.environ.setdefault("KIVY_METRICS_DENSITY", str(DENSITY))


def sample_forms():
    from shared.traveller_client import Form

    today = date.today()
    return [
        Form("NL7KQ3X9PD", "Watch House", today - timedelta(days=2), ("Wool coat",), 24900, 3880, "EUR",
             today + timedelta(days=80), "issued", "Refunds Inc"),
        Form("NL4TR8W2MC", "Bookshop", today - timedelta(days=1), ("Atlas", "Pens"), 8900, 700, "EUR",
             today + timedelta(days=85), "issued"),
        Form("NL2BX7Q4KA", "Watch House", today - timedelta(days=40), ("Chronograph",), 125000, 19500, "EUR",
             today + timedelta(days=40), "validated", "Refunds Inc"),
    ]


def _schiphol():
    from shared.traveller_client import ExitPoint, Zone

    departures = {"type": "Polygon", "coordinates": [[[4.760, 52.305], [4.775, 52.305], [4.775, 52.315],
                                                      [4.760, 52.315], [4.760, 52.305]]]}
    return ExitPoint("AMS", "Amsterdam Airport Schiphol", "airport", "Departures 2, next to gate D1",
                     (Zone("Departures 1", departures),), ("AMS-D1-01",))


def _hook_of_holland():
    from datetime import datetime, timezone

    from shared.traveller_client import ExitPoint, Sailing, Zone

    terminal = {"type": "Polygon", "coordinates": [[[4.1290, 51.9775], [4.1335, 51.9775], [4.1335, 51.9800],
                                                    [4.1290, 51.9800], [4.1290, 51.9775]]]}
    departs = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(second=0, microsecond=0)
    sailing = Sailing("HVH-HAR-" + departs.strftime("%Y-%m-%dT%H:%M"), "Stena Line", "Hook of Holland - Harwich",
                      "Harwich", "GB", departs)
    return ExitPoint("HVH", "Hook of Holland, Stena Line ferry terminal", "seaport", "Terminal hall",
                     (Zone("Stena Line terminal", terminal),), ("HVH-T1-01",), (sailing,))


def capture(out_dir: Path, languages=LANGUAGES, sizes=SIZES) -> list[Path]:
    _prepare_environment()
    from kivy.config import Config

    Config.set("graphics", "width", str(max(w for w, _ in sizes) * DENSITY))
    Config.set("graphics", "height", str(max(h for _, h in sizes) * DENSITY))
    from kivy.base import EventLoop
    from kivy.core.window import Window
    from kivy.metrics import Metrics

    from shared.traveller_client import FormVerdict, ValidationResult

    from .app import TravellerApp
    from .config import TravellerConfig
    from .presence import SimulatedPresence
    from .trip import from_boarding_pass
    from .wallet import Passport

    SCHIPHOL = _schiphol()
    EventLoop.ensure_window()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as data:
        # A phone in Schiphol's departures that does not see a sensor post yet.
        app = TravellerApp(TravellerConfig(api_url="http://127.0.0.1:9", data_dir=Path(data), camera="none"),
                           presence=SimulatedPresence(lat=52.3105, lon=4.7683))
        app.wallet.keep_exit_points([SCHIPHOL, _hook_of_holland()])
        app.wallet.keep_passport(Passport("E12345678", "CN", date(1988, 3, 14), date(2034, 1, 1), "MEI CHEN"))
        app.wallet.keep_forms(sample_forms())
        app.client.use(app.wallet.passport.credentials)
        app.wallet.keep_trip(from_boarding_pass(
            "M1SMITH/JOHN MR       EQWE456 AMSCDGAF 1241 332Y012F0007 100", date.today(), "AMS").to_json())
        app._run_prepare()
        app.root.size = Window.size
        try:
            for width, height in sizes:
                Window.size = (int(width * Metrics.density), int(height * Metrics.density))
                for lang in languages:
                    app.choose_language(lang)
                    for name in ("passport", "forms", "trip", "validate", "afterwards", "result"):
                        if name == "result":
                            app._validated(ValidationResult((
                                FormVerdict("NL7KQ3X9PD", "validated", None, "", reference="AMS-7Q2K"),
                                FormVerdict("NL4TR8W2MC", "check_required", "random_sample", "",
                                            desk_location="Departures 2, next to gate D1"),
                                FormVerdict("NL2BX7Q4KA", "refused", "deadline_passed", "",
                                            export_deadline=date.today() - timedelta(days=3)),
                            ), desk_pass="desk-pass-sample-token"))
                        else:
                            app.go(name)
                        for _ in range(4):
                            EventLoop.idle()
                        path = out_dir / f"{width}x{height}-{lang}-{name}.png"
                        app.root.export_to_png(str(path))
                        written.append(path)
        finally:
            app.dispatch("on_stop")
            Window.remove_widget(app.root)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path("screenshots/traveller")
    for path in capture(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
