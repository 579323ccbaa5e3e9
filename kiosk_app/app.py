"""The kiosk app: screens, and the threads that keep the UI responsive.

Four kinds of work never run on the UI thread: reading and decoding camera
frames (``shared.scanning.ScanLoop``), judging a scan (``ExitDesk.handle``,
which may wait on the network), sending the offline queue
(``ExitDesk.sync``) and the heartbeat that tells the API's fleet page how
the kiosk is (``shared.heartbeat``). Their results come back with
``Clock.schedule_once``.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from shared import scanning
from shared.client import DeviceRejected, KioskClient
from shared.heartbeat import DeviceHealth, HeartbeatLoop, free_disk_bytes
from shared.i18n import LANGUAGES
from shared.offline_queue import OfflineQueue

from . import desk, sounds
from .config import KioskConfig
from .screens import HelpScreen, ResultScreen, ScanScreen, StaffScreen, SummaryScreen, WelcomeScreen
from .wedge import WedgeBuffer
from .widgets import StatusBadge
from .wording import Wording

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
Builder.load_file(str(HERE / "widgets.kv"))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def frame_source_for(camera: str) -> scanning.FrameSource | None:
    """The frame source a ``camera`` setting names: an index, ``none``, a
    video file, or a folder of images (shown in a loop, for demos)."""
    if camera.strip().lower() in ("", "none", "off"):
        return None
    if camera.strip().isdigit():
        return scanning.camera(int(camera))
    path = Path(camera).expanduser()
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return scanning.ImageFiles(images, grey=False, loop=True)
    return scanning.video_file(path)


class KioskApp(App):
    """Self-service export validation at an exit point."""

    language = StringProperty("en")
    online = BooleanProperty(True)
    pending = NumericProperty(0)
    refused = NumericProperty(0)  # queued scans the API refused, for staff
    busy = BooleanProperty(False)
    forms_scanned = NumericProperty(0)
    desk_location = StringProperty("")

    def __init__(self, config: KioskConfig, **kwargs):
        super().__init__(**kwargs)
        self.settings = config
        self.title = "Tax-free export validation"
        self.language = config.default_language
        self.desk_location = config.desk_location
        self.session = desk.TravellerSession()
        self._generation = 0  # bumps when a traveller's session ends
        self._work: queue.Queue = queue.Queue()
        self._sync_wanted = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._latest_frame = None
        self._shown_frame = None
        self._last_activity = time.monotonic()
        self.scan_loop: scanning.ScanLoop | None = None
        self.camera_failed = False
        self.heartbeat: HeartbeatLoop | None = None
        self.wedge = WedgeBuffer()
        self.sounds = None
        self.decoders = [scanning.Decoder(scanning.QR), scanning.Decoder(scanning.QR),
                         scanning.Decoder(scanning.BOARDING_PASS)]

    # --- set-up ----------------------------------------------------------------

    def build(self):
        cfg = self.settings
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.queue = OfflineQueue(cfg.data_dir / "offline-queue.sqlite3")
        credentials = desk.DeviceCredentials(cfg.data_dir / "device.json")
        api_url, token, exit_point = cfg.api_url, cfg.device_token, cfg.exit_point
        paired = credentials.load()
        if token is None and paired:
            # Provisioned by scanning a pairing code earlier.
            api_url, token = paired["api_url"], paired["device_token"]
            exit_point = exit_point or paired.get("exit_point")
        self.desk = desk.ExitDesk(
            KioskClient(api_url, token),
            self.queue,
            desk.KeyCache(cfg.data_dir / "jwks.json"),
            exit_point=exit_point,
            desk_location=cfg.desk_location or None,
            sync_client=KioskClient(api_url, token),
            credentials=credentials,
        )
        self.pending = len(self.queue)
        self.refused = len(self.queue.failed())
        if cfg.sound:
            self.sounds = sounds.Cues(cfg.data_dir / "sounds")

        self.manager = ScreenManager(transition=NoTransition())
        self.screens = {
            "welcome": WelcomeScreen(name="welcome"),
            "scan": ScanScreen(name="scan"),
            "result": ResultScreen(name="result"),
            "summary": SummaryScreen(name="summary"),
            "help": HelpScreen(name="help"),
            "staff": StaffScreen(name="staff"),
        }
        for screen in self.screens.values():
            self.manager.add_widget(screen)
        self.manager.current = "welcome"
        root = FloatLayout()
        root.add_widget(self.manager)
        self.badge = StatusBadge(pos_hint={"right": 0.99, "top": 0.99})
        self.bind(online=self.badge.setter("online"), pending=self.badge.setter("pending"),
                  refused=self.badge.setter("refused"))
        self.badge.online, self.badge.pending, self.badge.refused = self.online, self.pending, self.refused
        self.badge.bind(on_open=lambda *_: self.go("staff"))
        root.add_widget(self.badge)

        Window.bind(on_textinput=self._on_textinput, on_key_down=self._on_key_down)
        Window.bind(on_touch_down=self._on_touch)
        self._ticker = Clock.schedule_interval(self._tick, 1 / 30)
        self._start_thread(self._desk_worker, "kiosk-desk")
        self._start_thread(self._sync_worker, "kiosk-sync")
        try:
            source = frame_source_for(cfg.camera)
        except OSError as exc:
            log.warning("no camera: %s (the handheld scanner still works)", exc)
            self.camera_failed = True
            source = None
        if source is not None:
            self.use_frames(source)
        # Its own client (and connection pool), as the sync worker has.
        self._heartbeat_client = KioskClient(api_url, token)
        self.heartbeat = HeartbeatLoop(self._send_heartbeat, self.health, cfg.heartbeat_interval).start()
        return root

    def on_stop(self):
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the threads and the camera, close the queue (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._sync_wanted.set()
        self._work.put(None)
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.scan_loop is not None:
            self.scan_loop.stop()
        Clock.unschedule(self._tick)
        Window.unbind(on_textinput=self._on_textinput, on_key_down=self._on_key_down,
                      on_touch_down=self._on_touch)
        for thread in self._threads:
            thread.join(10)
        self.queue.close()

    def _start_thread(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- language ----------------------------------------------------------------

    def tr(self, message: str, *_bindings, **fields) -> str:
        """``message`` in the current language. In kv, pass ``app.language``
        as a second argument so the text follows a language switch."""
        return Wording(self.language)(message, **fields)

    @property
    def languages(self) -> list:
        return [LANGUAGES[code] for code in self.settings.languages]

    def choose_language(self, code: str) -> None:
        self.touched()
        self.language = code

    # --- navigation ---------------------------------------------------------------

    def go(self, name: str) -> None:
        self.touched()
        if name in ("help", "staff") and self.manager.current not in ("help", "staff"):
            self.screens[name].back_to = self.manager.current
        if name == "staff":
            self.screens["staff"].show(len(self.queue), self.queue.failed())
        self.manager.current = name
        if name == "summary":
            self.screens["summary"].show(self.session.forms(), Wording(self.language))

    def finish(self) -> None:
        """"Done" on the summary, or idle too long: forget this traveller."""
        self._generation += 1
        self.session.clear()
        self.forms_scanned = 0
        self.wedge.clear()
        if self.scan_loop is not None:
            self.scan_loop.novelty.clear()
        for name in ("result", "summary"):
            self.screens[name].clear()
        self.screens["scan"].preview.clear()
        self._latest_frame = self._shown_frame = None
        self.language = self.settings.default_language
        self.manager.current = "welcome"

    def touched(self) -> None:
        self._last_activity = time.monotonic()

    # --- scanning -----------------------------------------------------------------

    def use_frames(self, source: scanning.FrameSource) -> None:
        """Scan frames from ``source`` (replacing any earlier source)."""
        if self.scan_loop is not None:
            self.scan_loop.stop()
        self.scan_loop = scanning.ScanLoop(
            source, self.decoders, on_codes=self._on_codes, on_frame=self._on_frame, max_fps=30)
        self.scan_loop.start()

    def _on_frame(self, frame) -> None:  # scan-loop thread
        self._latest_frame = frame

    def _on_codes(self, codes) -> None:  # scan-loop thread
        for code in codes:
            self.submit(code.text)

    def submit(self, text: str) -> None:
        """A scan to judge (from the camera or the handheld scanner)."""
        self._work.put((self._generation, text))

    def _desk_worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            generation, text = item
            if generation != self._generation:
                continue  # scanned by a traveller who has gone
            Clock.schedule_once(lambda dt: self._set_busy(True))
            try:
                outcomes = self.desk.handle(text, self.session)
            except Exception:  # one bad scan must not stop the kiosk
                log.exception("a scan could not be handled")
                outcomes = [desk.Outcome(desk.UNREADABLE)]
            pending = len(self.queue)
            online = self.desk.online
            Clock.schedule_once(lambda dt, o=outcomes, g=generation: self._show(o, g, pending, online))

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy

    def _show(self, outcomes, generation, pending, online) -> None:
        self.busy = False
        self.pending, self.online = pending, online
        if generation != self._generation or not outcomes:
            return
        self.touched()
        self.forms_scanned = len(self.session.forms())
        self.screens["result"].show(outcomes, Wording(self.language))
        self.manager.current = "result"
        if self.sounds is not None:
            self.sounds.play(outcomes[0].kind)
        if not online or pending:
            self._sync_wanted.set()

    # --- offline queue --------------------------------------------------------------

    def request_sync(self) -> None:
        """Ask the sync worker to send the queue (and check the API) now."""
        self._sync_wanted.set()

    def _sync_worker(self) -> None:
        while not self._stopping.is_set():
            try:
                report = self.desk.sync()
                refused = len(self.queue.failed())
                Clock.schedule_once(lambda dt, r=report, o=self.desk.online, n=refused: self._synced(r, o, n))
            except Exception:
                log.exception("sync failed")
            self._sync_wanted.wait(self.settings.sync_interval)
            self._sync_wanted.clear()

    def _synced(self, report, online, refused) -> None:
        self.online = online
        self.pending = report.remaining
        self.refused = refused

    # --- heartbeat (its own thread) -----------------------------------------------------

    def health(self) -> DeviceHealth:
        """What the heartbeat reports: the offline queue, whether it can be
        written, the camera, the disk holding the queue."""
        depth, oldest = self.queue.backlog()
        return DeviceHealth(queue_depth=depth, oldest_queued_at=oldest,
                            queue_writable=self.desk.queue_writable, camera_ok=self.camera_ok(),
                            free_disk_bytes=free_disk_bytes(self.settings.data_dir))

    def camera_ok(self) -> bool | None:
        """None without a camera; False if it could not be opened or stopped."""
        if self.settings.camera.strip().lower() in ("", "none", "off"):
            return None
        if self.camera_failed or self.scan_loop is None:
            return False
        return self.scan_loop.error is None and self.scan_loop.running

    def _send_heartbeat(self, body: dict) -> dict:
        client, paired = self._heartbeat_client, self.desk.client
        # Pairing may have given the kiosk its address and token since.
        client.base_url, client.device_token = paired.base_url, paired.device_token
        if not client.device_token:
            raise DeviceRejected(401, "unauthorized", "not paired yet: nothing to report")
        return client.heartbeat(body)

    # --- keyboard wedge and the clock -------------------------------------------------

    def _on_textinput(self, window, text):
        self.touched()
        for scan in self.wedge.type(text):
            self.submit(scan)

    def _on_touch(self, window, touch):
        self.touched()
        return False

    def _on_key_down(self, window, key, scancode, codepoint, modifiers):
        if key in (13, 271):  # Enter, keypad Enter
            self.touched()
            for scan in self.wedge.enter():
                self.submit(scan)
            return True
        return False

    def _tick(self, dt):
        for scan in self.wedge.idle():
            self.submit(scan)
        frame = self._latest_frame
        if frame is not None and frame is not self._shown_frame and self.manager.current == "scan":
            self.screens["scan"].preview.show(frame)
            self._shown_frame = frame
        idle = time.monotonic() - self._last_activity
        if self.manager.current != "welcome" and not self.busy and idle > self.settings.idle_timeout:
            self.finish()
