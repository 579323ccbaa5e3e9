"""Find a traveller's forms: the form's QR code through the camera, the
passport's zone typed by the document reader, or a form id typed by hand."""
from __future__ import annotations

import logging
import threading

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty

from shared import mrz, scanning

from ..wording import Phrase, _
from .base import DeskScreen

log = logging.getLogger(__name__)
PREVIEW_FPS = 12


class OfficerFindScreen(DeskScreen):
    scanning = BooleanProperty(False)
    status = StringProperty(Phrase(_("Hold the form's QR code inside the frame.")))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._loop: scanning.ScanLoop | None = None
        self._latest = None
        self._frame_lock = threading.Lock()
        self._preview = None
        self._decoder = scanning.Decoder(scanning.QR)

    def on_pre_enter(self, *_args):
        self.error = ""

    def on_enter(self, *_args):
        # The document reader types into the focused field.
        self.ids.passport.focus = True

    def on_leave(self, *_args):
        self.stop_camera()

    # --- camera -----------------------------------------------------------------------

    def toggle_camera(self) -> None:
        if self.scanning:
            self.stop_camera()
        else:
            self.start_camera()

    def start_camera(self) -> None:
        if self.scanning:
            return
        self.error = ""
        self.scanning = True
        self.status = Phrase(_("Starting the camera..."))
        # Opening a camera can take a second: not on the UI thread.
        self.app.background.run(self.app.frame_source_factory, done=self._camera_ready,
                                failed=self._camera_failed)

    def _camera_ready(self, source) -> None:
        if source is None:
            self._camera_failed(OSError("this handheld has no camera configured"))
            return
        if not self.scanning:  # stopped while it was opening
            source.close()
            return
        self.app.camera_ok = True
        self.status = Phrase(_("Hold the form's QR code inside the frame."))
        self._loop = scanning.ScanLoop(source, [self._decoder], on_codes=self._codes_found,
                                       on_frame=self._frame, on_end=self._ended,
                                       max_fps=15).start()
        self._preview = Clock.schedule_interval(self._show_frame, 1 / PREVIEW_FPS)

    def _camera_failed(self, exc) -> None:
        if self.app.camera_ok is not None:  # a handheld without a camera has nothing to report
            self.app.camera_ok = False
        self.scanning = False
        self.error = Phrase(_("The camera cannot be used ({problem}). Type the form id instead."), problem=str(exc))

    def stop_camera(self) -> None:
        loop, self._loop = self._loop, None
        if self._preview is not None:
            self._preview.cancel()
            self._preview = None
        if loop is not None:
            loop.stop()
        self.scanning = False

    # Called on the scan loop's thread: hand over to the UI thread.
    def _frame(self, frame) -> None:
        with self._frame_lock:
            self._latest = frame

    def _codes_found(self, codes) -> None:
        Clock.schedule_once(lambda _dt: self._found(codes[0].text), 0)

    def _ended(self) -> None:
        Clock.schedule_once(lambda _dt: self._source_ended(), 0)

    def _show_frame(self, _dt) -> None:
        with self._frame_lock:
            frame, self._latest = self._latest, None
        if frame is not None:
            self.ids.camera.show(frame)

    def _found(self, text: str) -> None:
        if self._loop is None:
            return
        self._show_frame(0)
        self.stop_camera()
        self.status = Phrase(_("QR code read. Opening the form..."))
        self.app.find(text, "qr")

    def _source_ended(self) -> None:
        if self._loop is not None and self._loop.error is not None:
            self.error = Phrase(_("The camera stopped ({problem})."), problem=str(self._loop.error))
            self.app.camera_ok = False
        self._show_frame(0)
        self.stop_camera()

    # --- typed input ------------------------------------------------------------------

    def passport_typed(self, text: str) -> None:
        """The document reader types two lines; act once both are in."""
        if not mrz.looks_like_mrz(text):
            return
        # Emptied after the reader's keystroke is handled, not inside it.
        Clock.schedule_once(lambda _dt: setattr(self.ids.passport, "text", ""), 0)
        self.error = ""
        self.app.find(text, "passport")

    def open_id(self) -> None:
        text = self.ids.form_id.text
        self.error = ""
        self.app.find(text, "id")


SCREEN = OfficerFindScreen
