"""Kiosk tests: the real Kivy screens in an SDL offscreen window (Mesa,
no display needed), driven against a live API server on 127.0.0.1.

Kivy reads its environment when first imported, so it is set here, before
any test module imports it: offscreen video, no command-line parsing (the
arguments are pytest's), a throwaway KIVY_HOME, no log files, the default
configuration, and no audio device.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

_KIVY_HOME = tempfile.mkdtemp(prefix="kivy-home-")
for name, value in {
    "SDL_VIDEODRIVER": "offscreen" if not os.environ.get("DISPLAY") else os.environ.get("SDL_VIDEODRIVER", ""),
    "SDL_AUDIODRIVER": "dummy",
    "KIVY_NO_ARGS": "1",
    "KIVY_HOME": _KIVY_HOME,
    "KIVY_NO_FILELOG": "1",
    "KIVY_USE_DEFAULTCONFIG": "1",
    "KIVY_NO_CONSOLELOG": "1",
}.items():
    if value:
        os.environ.setdefault(name, value)

import pytest  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402


REPO = Path(__file__).resolve().parents[2]
FRAMES = REPO / "tests" / "data" / "frames"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_KIVY_HOME, ignore_errors=True)


class SwitchableServer:
    """The API on a fixed port that a test can stop and start again, to play
    "the central system is down" and "it is back"."""

    def __init__(self, app):
        self.app = app
        self.port = None
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "SwitchableServer":
        self._server = make_server("127.0.0.1", self.port or 0, self.app, threaded=True)
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

    @property
    def running(self) -> bool:
        return self._server is not None


@pytest.fixture
def api(app):
    """The API on 127.0.0.1, stoppable (see SwitchableServer)."""
    server = SwitchableServer(app).start()
    yield server
    server.stop()


def wait_for(condition, timeout: float = 30.0, pump=None, interval: float = 0.01):
    """Wait until ``condition()`` is true, pumping the UI loop if given. The
    timeout only bounds a wait that would never end: generous, because a
    machine running the suite may be busy with much else."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pump is not None:
            pump()
        if condition():
            return True
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {getattr(condition, '__name__', condition)}")
