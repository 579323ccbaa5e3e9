"""Fixtures for the traveller's app: the real app, headless (SDL offscreen,
real rendering), in a phone-sized window, driven in this process.

``start_traveller(api_url, data_dir)`` builds the app against an API at
``api_url`` (``traveller_api.url``, the live API on 127.0.0.1; or a closed
port for "no connection") with its data folder; ``phone.sign_in()`` types
the passport's zone as a traveller would; ``phone.tap(widget)`` sends real
touches through the window. Presence is the simulated provider, which a
test moves about::

    def test_...(start_traveller, traveller_api, world, tmp_path):
        phone = start_traveller(traveller_api.url, tmp_path / "phone")
        phone.sign_in()
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

# Kivy reads these when it is first imported (setdefault: another suite in
# the same run may have set them already, to the same effect).
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_USE_DEFAULTCONFIG", "1")
os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
_OWN_KIVY_HOME = None
if "KIVY_HOME" not in os.environ:
    _OWN_KIVY_HOME = os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kivy-home-")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

from kivy.config import Config  # noqa: E402

# An offscreen window never grows past the size it was created with: make it
# large enough for every Kivy suite of the run (see tests/officer/conftest.py).
_density = float(os.environ.get("KIVY_METRICS_DENSITY") or 1)
for _key, _need in (("width", 1280), ("height", max(1280, round(640 * _density)))):
    Config.set("graphics", _key, str(max(Config.getint("graphics", _key), _need)))

import pytest  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from shared.traveller_client import ExitPoint, Zone  # noqa: E402
from tests.traveller.samples import ZONE, open_forms, passport  # noqa: E402,F401

PHONE = (360, 640)  # dp: the smallest phone the app is made for
SECRET = bytes(range(32))  # the sensor post's secret (the simulated phone sees its tokens)
POST = "AMS-D1-01"
INSIDE = dict(lat=52.3105, lon=4.7683)  # Schiphol, departures, in the zone
OUTSIDE = dict(lat=52.3676, lon=4.9041)  # Amsterdam city centre
SCHIPHOL = ExitPoint("AMS", "Amsterdam Airport Schiphol", "airport", "Departures 2, next to gate D1",
                     (Zone("Departures 1", {"type": "Polygon", "coordinates": [[
                         [4.760, 52.305], [4.775, 52.305], [4.775, 52.315], [4.760, 52.315], [4.760, 52.305]]]}),),
                     (POST,))


def hook_of_holland():
    """A seaport as the API lists it, with today's sailing still to leave
    (three hours from now, so it has not left while a test runs)."""
    from datetime import datetime, timedelta, timezone

    from shared.traveller_client import Sailing

    departs = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(second=0, microsecond=0)
    return ExitPoint("HVH", "Hook of Holland, Stena Line ferry terminal", "seaport", "Terminal hall",
                     (Zone("Stena Line terminal", {"type": "Polygon", "coordinates": [[
                         [4.1290, 51.9775], [4.1335, 51.9775], [4.1335, 51.9800], [4.1290, 51.9800],
                         [4.1290, 51.9775]]]}),), ("HVH-T1-01",),
                     (Sailing("HVH-HAR-" + departs.strftime("%Y-%m-%dT%H:%M"), "Stena Line",
                              "Hook of Holland - Harwich", "Harwich", "GB", departs),))


def pytest_sessionfinish(session, exitstatus):
    if _OWN_KIVY_HOME:
        shutil.rmtree(_OWN_KIVY_HOME, ignore_errors=True)


def fill_wallet(data_dir: Path, *, with_passport=True, forms=(), exit_points=None, trip=None,
                language=None) -> None:
    """What a phone would hold after an earlier visit with the API reachable
    (by default Schiphol and Hook of Holland, with a sailing)."""
    from traveller_app.wallet import Wallet

    wallet = Wallet(data_dir)
    try:
        if with_passport:
            wallet.keep_passport(passport())
        wallet.keep_forms(list(forms))
        wallet.keep_exit_points(list(exit_points) if exit_points is not None else [SCHIPHOL, hook_of_holland()])
        if trip is not None:
            wallet.keep_trip(trip)
        if language:
            wallet.keep_language(language)
    finally:
        wallet.close()


@pytest.fixture
def closed_port_url() -> str:
    """An address on this machine where nothing listens: a socket bound to a
    free port and closed again, so connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _Quiet(WSGIRequestHandler):
    protocol_version = "HTTP/1.0"  # no keep-alive: a stopped server is off the network at once

    def log_message(self, *args):
        pass


class RecordingServer:
    """The API on 127.0.0.1, noting each request's method, path and query
    string (what travels in a URL, where personal data must never be)."""

    def __init__(self, app):
        self.app = app
        self.requests: list[tuple[str, str, str]] = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _wsgi(self, environ, start_response):
        self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                              environ.get("QUERY_STRING", "")))
        return self.app(environ, start_response)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def traveller_api(app):
    """The API of this test's database (``app``, ``world``) live on 127.0.0.1."""
    server = RecordingServer(app)
    yield server
    server.stop()


class Phone:
    """The real traveller's app, started and driven in this process."""

    def __init__(self, api_url: str, data_dir: Path, *, presence=None, language: str = ""):
        from traveller_app.config import TravellerConfig
        from traveller_app.presence import SimulatedPresence

        self.config = TravellerConfig(api_url=api_url, data_dir=Path(data_dir), camera="none", language=language)
        self.presence = presence if presence is not None else SimulatedPresence(secret=SECRET)
        self.app = None

    # --- life -----------------------------------------------------------------

    def start(self) -> "Phone":
        from kivy.core.window import Window
        from kivy.metrics import Metrics

        from traveller_app.app import TravellerApp

        Window.size = (int(PHONE[0] * Metrics.density), int(PHONE[1] * Metrics.density))
        self.app = TravellerApp(self.config, presence=self.presence, frame_source_factory=lambda: None)
        self.app._run_prepare()
        self.pump(3)
        return self

    def stop(self) -> None:
        from kivy.app import App
        from kivy.core.window import Window

        app, self.app = self.app, None
        if app is None:
            return
        app.dispatch("on_stop")  # kv's `app` proxy forgets this app
        for child in Window.children[:]:
            Window.remove_widget(child)
        App._running_app = None
        self.pump(1)

    # --- time -------------------------------------------------------------------

    def pump(self, frames: int = 1) -> None:
        from kivy.base import EventLoop

        for _ in range(frames):
            EventLoop.idle()

    def wait(self, condition, what: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what} (screen: {self.current})")
            time.sleep(0.01)

    def settle(self, timeout: float = 15.0) -> None:
        """Until every background call has reached the screens."""
        self.wait(lambda: self.app.background.busy == 0, "background work", timeout)
        self.pump(3)

    # --- looking ----------------------------------------------------------------

    @property
    def current(self) -> str:
        return self.app.manager.current if self.app else "(stopped)"

    def screen(self, name: str | None = None):
        return self.app.screens[name or self.current]

    def labels(self, root=None) -> list:
        """Every text the traveller can see on the screen (labels and buttons)."""
        from kivy_common.widgets import LanguageLabel

        return [w for w in (root or self.screen()).walk(restrict=True)
                if isinstance(w, LanguageLabel) and w.text and visible(w)]

    def texts(self, root=None) -> list[str]:
        return [w.source_text for w in self.labels(root)]

    def go(self, name: str) -> None:
        self.app.go(name)
        self.settle()

    # --- acting -------------------------------------------------------------------

    def tap(self, widget) -> None:
        """A finger on the widget's centre: down, up, through the window."""
        from kivy.tests.common import UnitTestTouch
        from kivy.uix.scrollview import ScrollView

        parent = widget.parent
        while parent is not None and not isinstance(parent, ScrollView):
            parent = parent.parent if parent.parent is not parent else None
        if parent is not None:
            parent.scroll_to(widget, padding=10, animate=False)
            self.pump(2)
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.pump(1)
        touch.touch_up()
        self.pump(2)
        if parent is not None:  # a ScrollView hands a tap on after the touch ends
            time.sleep(0.25)
            self.pump(3)

    def sign_in(self, zone: str = ZONE) -> None:
        """Type the passport's two zone lines and press "Use these lines";
        wait until the forms were asked for."""
        self.go("passport")
        screen = self.screen()
        self.type(screen.ids.zone, zone)
        self.tap(screen.ids.use_zone)
        self.settle()

    def type(self, field, text: str) -> None:
        field.focus = True
        field.text = ""
        field.insert_text(text)
        self.pump(2)
        field.focus = False


def drawn_qr_png(texture, path):
    """The texture the phone put on its result screen, as a picture. A
    texture made from an image keeps its rows top first and says so by
    flipped texture coordinates; one drawn by OpenGL starts at the bottom."""
    import numpy as np
    from PIL import Image

    rgba = np.frombuffer(texture.pixels, np.uint8).reshape(texture.height, texture.width, 4)
    if texture.tex_coords[1] == 0:  # the bottom left corner is the texture's first row
        rgba = np.flipud(rgba)
    Image.fromarray(rgba[:, :, :3].copy()).save(path)
    return path


def visible(widget) -> bool:
    """Drawn with some size and not faded out, nor inside something that is."""
    w = widget
    while w is not None and w.parent is not w:
        if w.opacity == 0 or w.width <= 0 or w.height <= 0:
            return False
        w = w.parent
    return True


@pytest.fixture
def start_traveller(tmp_path):
    """``start_traveller(api_url, data_dir=None, presence=None, language="")``:
    the real app against ``api_url`` with its data folder (default: a fresh
    one); every phone started is stopped at the end."""
    phones: list[Phone] = []

    def start(api_url: str, data_dir: Path | None = None, **options) -> Phone:
        phone = Phone(api_url, data_dir or tmp_path / "phone", **options).start()
        phones.append(phone)
        return phone

    yield start
    for phone in phones:
        phone.stop()
