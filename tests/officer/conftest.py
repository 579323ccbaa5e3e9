"""Fixtures for the officer's handheld: the API world, a server that can be
taken off the network and brought back, and a driver for the real app.

The app runs headless (SDL offscreen, real rendering) in this process; the
driver pumps Kivy's event loop itself instead of ``App.run()``, taps
widgets with real touch events and waits for background work.
"""
from __future__ import annotations

import os
import shutil
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
os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")  # no X here for xclip/xsel
_OWN_KIVY_HOME = None
if "KIVY_HOME" not in os.environ:
    _OWN_KIVY_HOME = os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kivy-home-")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

from kivy.config import Config  # noqa: E402

# An offscreen window never grows past the size it was created with (SDL
# keeps the first framebuffer): create it large enough for every Kivy suite
# in the process (the kiosk's 1280 x 800, the handheld's 360 x 640 dp at the
# density KIVY_METRICS_DENSITY asks for), before any test creates it.
_density = float(os.environ.get("KIVY_METRICS_DENSITY") or 1)
for _key, _need in (("width", 1280), ("height", max(1280, round(640 * _density)))):
    Config.set("graphics", _key, str(max(Config.getint("graphics", _key), _need)))

import pytest  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from tests.builders import PASSWORD, item, traveller  # noqa: E402,F401


def pytest_sessionfinish(session, exitstatus):
    if _OWN_KIVY_HOME:
        shutil.rmtree(_OWN_KIVY_HOME, ignore_errors=True)


# --- the API, on and off the network -------------------------------------------------

class _OneRequestPerConnection(WSGIRequestHandler):
    # No keep-alive: once the server stops, no pooled connection can still
    # reach a live handler thread, so "offline" means offline.
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # quiet
        pass


class DeskServer:
    """The API on 127.0.0.1; ``stop()`` takes it off the network (connections
    refused), ``start()`` brings it back on the same port; ``slow_paths``
    makes some answers slow."""

    def __init__(self, app):
        self.app = app
        self.port = 0
        self.slow_paths: dict[str, float] = {}  # path prefix -> seconds to wait before answering
        # path prefix -> an event: such requests are answered only once it is set
        self.held_paths: dict[str, threading.Event] = {}
        self.holding = 0  # requests held now
        self._holding_lock = threading.Lock()
        self._server = None
        self._thread = None

    def _wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        for prefix, seconds in self.slow_paths.items():
            if path.startswith(prefix):
                time.sleep(seconds)
        for prefix, release in list(self.held_paths.items()):
            if path.startswith(prefix):
                with self._holding_lock:
                    self.holding += 1
                try:
                    release.wait(30)
                finally:
                    with self._holding_lock:
                        self.holding -= 1
        return self.app(environ, start_response)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "DeskServer":
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True,
                                   request_handler=_OneRequestPerConnection)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None


@pytest.fixture
def desk_server(app):
    server = DeskServer(app).start()
    yield server
    server.stop()


# --- forms waiting at the desk -------------------------------------------------------------

class DeskWorld:
    """The API world, plus what the desk's tests need of it."""

    def __init__(self, world):
        self.world = world

    def __getattr__(self, name):
        return getattr(self.world, name)

    def waiting_form(self, **traveller_overrides) -> dict:
        """A form with a watch (which sends it to the desk) and a coat,
        scanned at the AMS kiosk: check_required. Returns it as issued."""
        form = self.world.issue(
            "shop",
            item(125000, category="watches", description="Chronograph", serial_number="SN-10077"),
            item(24900, description="Wool coat"),
            traveller=traveller(**traveller_overrides),
        )
        scanned = self.world.scan("kiosk", form["qr_payload"])
        assert scanned.get_json()["verdict"] == "check_required", scanned.get_json()
        return form

    def events(self, form_id: str) -> list[dict]:
        r = self.world.get("officer", f"/api/v1/forms/{form_id}/events")
        assert r.status_code == 200, r.get_json()
        return r.get_json()["items"]

    def form(self, form_id: str) -> dict:
        r = self.world.get("officer", f"/api/v1/forms/{form_id}")
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def decisions(self, form_id: str) -> list[dict]:
        return [e for e in self.events(form_id)
                if e["type"] in ("form.validated", "form.partially_validated", "form.rejected")]


@pytest.fixture
def desk_world(world) -> DeskWorld:
    return DeskWorld(world)


def _passport_zone(surname: str, given: str, number: str, state: str, born: str, sex: str,
                   expires: str) -> str:
    """A TD3 passport zone with correct check digits (dates YYMMDD), as a
    document reader types it: two lines."""
    from shared.mrz import check_digit

    line1 = f"P<{state}{surname}<<{given}".ljust(44, "<")
    number = number.ljust(9, "<")
    line2 = (f"{number}{check_digit(number)}{state}{born}{check_digit(born)}{sex}"
             f"{expires}{check_digit(expires)}{'<' * 14}<")
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    return f"{line1}\n{line2}{check_digit(composite)}"


@pytest.fixture
def passport_zone():
    return _passport_zone


# --- driving the app -----------------------------------------------------------------------

class Handheld:
    """The real officer app, started and driven in this process."""

    def __init__(self, api_url: str, data_dir: Path, *, frames=None, idle_lock: float = 3600,
                 refresh: float = 3600, exit_point: str | None = "AMS", language: str = "en"):
        from officer_app.config import OfficerConfig

        self.config = OfficerConfig(api_url=api_url, data_dir=data_dir, camera="none",
                                    idle_lock=idle_lock, refresh=refresh, exit_point=exit_point,
                                    language=language)
        self.frames = frames  # a callable returning a frame source (the "camera")
        self.app = None

    # --- life -----------------------------------------------------------------

    def start(self) -> "Handheld":
        from kivy.core.window import Window
        from kivy.metrics import Metrics

        from officer_app.app import OfficerApp

        Window.size = (int(360 * Metrics.density), int(640 * Metrics.density))
        self.window_size = tuple(Window.size)
        self.app = OfficerApp(self.config, frame_source_factory=self.frames or (lambda: None))
        self.app._run_prepare()
        self.pump(3)
        return self

    def stop(self) -> None:
        """Stop the app as closing it would (threads joined, queue closed)."""
        from kivy.app import App
        from kivy.core.window import Window

        app, self.app = self.app, None
        if app is None:
            return
        app.dispatch("on_stop")
        for child in Window.children[:]:
            Window.remove_widget(child)
        App._running_app = None
        self.pump(1)

    # --- time ---------------------------------------------------------------

    def pump(self, frames: int = 1) -> None:
        from kivy.base import EventLoop

        for _ in range(frames):
            EventLoop.idle()

    def wait(self, condition, what: str, timeout: float = 15.0):
        """Run the event loop until ``condition()`` is truthy."""
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
        self.pump(2)

    # --- looking ------------------------------------------------------------

    @property
    def current(self) -> str:
        return self.app.manager.current if self.app else "(stopped)"

    def screen(self, name: str | None = None):
        return self.app.manager.get_screen(name or self.current)

    def find_all(self, cls_name: str, root=None, **props) -> list:
        """Widgets of class ``cls_name`` under ``root`` (the current screen)
        whose properties equal ``props``, in reading order."""
        root = root or self.screen()
        found = [w for w in root.walk(restrict=True)
                 if type(w).__name__ == cls_name and all(getattr(w, k, None) == v for k, v in props.items())]
        return found

    def button(self, text: str, root=None):
        """The button whose text starts with ``text`` (a message id is looked
        for in the handheld's language), on the current screen."""
        text = self.app.tr(text)
        matches = [w for w in (root or self.screen()).walk(restrict=True)
                   if type(w).__name__ == "DeskButton" and w.text.startswith(text) and w.opacity > 0]
        assert matches, f"no button {text!r} on {self.current}"
        return matches[0]

    # --- acting -------------------------------------------------------------

    def tap(self, widget) -> None:
        """A finger on the widget's centre: down, up, through the window."""
        from kivy.tests.common import UnitTestTouch
        from kivy.uix.scrollview import ScrollView

        # A screen manager ignores touches while it changes screens (one frame).
        self.wait(lambda: not self.app.manager.transition.is_active, "the screen change")

        parent = widget.parent
        while parent is not None and not isinstance(parent, ScrollView):
            # The window is its own parent.
            parent = parent.parent if parent.parent is not parent else None
        # A RecycleView's items are the ones on screen (and kv loads the
        # class from a module of another name: compare names, not classes).
        if parent is not None and type(parent).__name__ != "RecycleView":
            parent.scroll_to(widget, padding=10, animate=False)
            self.pump(2)
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.pump(1)
        touch.touch_up()
        # A ScrollView hands a tap to its children after the touch ends.
        self.pump(2)
        if parent is not None:
            time.sleep(0.25)
            self.pump(3)

    def type(self, field, text: str) -> None:
        """Keys typed into a text field (a person, or a document reader)."""
        field.focus = True
        field.insert_text(text)
        self.pump(2)

    def log_in(self, username: str = "officer", password: str = PASSWORD, exit_point: str = "AMS") -> None:
        login = self.screen("login")
        self.wait(lambda: self.current == "login", "the login screen")
        login.ids.username.text = username
        login.ids.password.text = password
        self.tap(self.button("Log in"))
        self.wait(lambda: self.current == "exit_point", "the exit point screen")
        self.wait(lambda: self.find_all("DeskButton", self.screen("exit_point").ids.points), "exit points")
        self.tap(self.button(exit_point, self.screen("exit_point").ids.points))
        self.wait(lambda: self.current == "queue", "the queue")
        # Signed on at the desk; the queue's first refresh has reached the screen.
        self.settle()

    def screenshot(self, path: Path) -> Path:
        from kivy.core.window import Window

        path.parent.mkdir(parents=True, exist_ok=True)
        self.app.root.canvas.ask_update()
        self.pump(3)
        written = Window.screenshot(name=str(path.with_name(path.stem + "-.png")))
        Path(written).replace(path)
        return path


@pytest.fixture
def handheld(desk_server, tmp_path):
    """Start handhelds against the desk server; all are stopped at the end."""
    started: list[Handheld] = []

    def start(**options) -> Handheld:
        options.setdefault("data_dir", tmp_path / "handheld")
        device = Handheld(desk_server.url, options.pop("data_dir"), **options).start()
        started.append(device)
        return device

    yield start
    for device in started:
        device.stop()
