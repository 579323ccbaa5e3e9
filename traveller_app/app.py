"""The traveller's app: screens, navigation, and the work kept off the UI
thread (network calls, OCR and bar code decoding, presence evidence), whose
results come back through the Kivy clock (``kivy_common.background``).

State is written to the wallet (durable, on disk) before it is shown, so
going to the background, being killed and starting again loses nothing.
"""
from __future__ import annotations

import io
import logging
import threading
from datetime import date, datetime, timezone
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.image import Image as CoreImage
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kivy_common import widgets  # noqa: F401 - registers LanguageLabel and Preview for kv
from kivy_common.background import Background
from kivy_common.text import visual_line
from shared import scanning
from shared.client import ApiError, Offline
from shared.i18n import LANGUAGES
from shared.traveller_client import RateLimited, TravellerClient

from . import passport_entry, trip as trips
from .config import TravellerConfig
from .session import TravellerSession
from .wallet import Wallet
from .wording import BEFORE_CHECK_IN, OFFLINE, TRIP_WARNINGS, VERDICT_TITLES, Wording

log = logging.getLogger(__name__)

TONES = {
    "primary": ((0.10, 0.35, 0.70, 1), (1, 1, 1, 1)),
    "success": ((0.06, 0.50, 0.22, 1), (1, 1, 1, 1)),
    "warning": ((0.98, 0.70, 0.05, 1), (0.08, 0.08, 0.08, 1)),
    "danger": ((0.75, 0.09, 0.09, 1), (1, 1, 1, 1)),
    "neutral": ((0.35, 0.38, 0.42, 1), (1, 1, 1, 1)),
    "light": ((0.87, 0.89, 0.92, 1), (0.08, 0.08, 0.08, 1)),
}
VERDICT_TONES = {"validated": "success", "check_required": "warning", "refused": "danger"}
GATE_SECONDS = 2.0


def _(message: str) -> str:
    return message


class TravellerApp(App):
    title = "Tax-free"
    language = StringProperty("en")
    busy = BooleanProperty(False)
    online = BooleanProperty(True)
    notice = StringProperty("")
    passport_text = StringProperty("")
    gate_text = StringProperty("")
    gate_open = BooleanProperty(False)

    def __init__(self, config: TravellerConfig, *, presence=None, frame_source_factory=None, **kwargs):
        super().__init__(**kwargs)
        self.settings = config
        self.wallet = Wallet(Path(config.data_dir))
        self.client = TravellerClient(config.api_url, self.wallet.install_id)
        self.session = TravellerSession(self.wallet, self.client, presence or config.presence())
        self.frame_source_factory = frame_source_factory or config.frame_source
        self.background = Background()
        self.language = config.language or self.wallet.language or "en"
        self._scan_loop: scanning.ScanLoop | None = None
        self._scan_screen = None
        self._latest_frame = None
        self._frame_lock = threading.Lock()
        self._events = []
        self._mrz_reader = None
        self._notice: tuple[str, dict] | None = None

    # --- building ------------------------------------------------------------

    def build(self):
        from .screens import build_screens

        self.screens = build_screens()
        self.manager = ScreenManager(transition=NoTransition())
        for screen in self.screens.values():
            self.manager.add_widget(screen)
        self._language_buttons()
        self.show_state()
        self.manager.current = "forms" if self.wallet.passport else "passport"
        return self.manager

    def on_start(self):
        from kivy.core.window import Window

        Window.clearcolor = (0.96, 0.96, 0.94, 1)
        self._events = [Clock.schedule_interval(lambda _dt: self.check_gate(), GATE_SECONDS),
                        Clock.schedule_interval(self._show_frame, 1 / 15)]
        if self.wallet.passport:
            self.refresh()

    def on_pause(self):
        # Everything is on disk already; stop the sensors while away.
        self.stop_camera()
        self.session.presence.stop()
        return True

    def on_resume(self):
        self.session.presence.start()
        self.show_state()
        self.refresh()

    def on_stop(self):
        for event in self._events:
            event.cancel()
        self.stop_camera()
        self.background.shutdown()
        self.wallet.close()

    # --- language and navigation -------------------------------------------------

    def tr(self, message: str, *_bindings, **fields) -> str:
        return Wording(self.language)(message, **fields)

    def hint(self, message: str, *_bindings) -> str:
        """A text field's hint: text inputs draw left to right, so Arabic is
        shaped and put in display order here."""
        text = self.tr(message)
        return visual_line(text) if LANGUAGES[self.language].rtl else text

    @property
    def wording(self) -> Wording:
        return Wording(self.language)

    def choose_language(self, code: str) -> None:
        self.language = code
        self.wallet.keep_language(code)
        self.show_state()

    def _language_buttons(self) -> None:
        from kivy.factory import Factory

        grid = self.screens["passport"].ids.languages
        for lang in LANGUAGES.values():
            button = Factory.TButton(source_text=lang.native_name, fixed_language=lang.code, tone="light",
                                     font_size="15sp")
            button.bind(on_release=lambda _b, code=lang.code: self.choose_language(code))
            grid.add_widget(button)

    def go(self, name: str) -> None:
        self.manager.current = name
        self.show_state()
        if name == "validate":
            self.check_gate()

    # --- showing what the wallet holds ------------------------------------------------

    def tell(self, message: str | None, **fields) -> None:
        """A line above the forms (no connection, a form added ...), kept as
        its message so it follows a change of language."""
        self._notice = (message, fields) if message else None
        self.notice = self.tr(message, **fields) if message else ""

    def show_state(self) -> None:
        w = self.wording
        if self._notice:
            self.tell(self._notice[0], **self._notice[1])
        passport = self.wallet.passport
        self.passport_text = w(_("Passport {number} ({country})"), number=passport.number,
                               country=passport.country) if passport else ""
        forms = self.wallet.forms
        self.screens["forms"].show(forms, w)
        self.screens["validate"].show(forms, w)
        self.screens["afterwards"].show(forms, w)
        self._show_trip(w)

    def _show_trip(self, w: Wording) -> None:
        from kivy.factory import Factory

        screen = self.screens["trip"]
        data = self.wallet.trip
        current = trips.Trip.from_json(data) if data else None
        screen.summary = w.trip(current) if current else ""
        box = screen.ids.warnings
        box.clear_widgets()
        for warning in current.warnings if current else ():
            text = w(TRIP_WARNINGS[warning])
            if warning == trips.NOT_LAST_EXIT and current.validate_at:
                text += "\n" + w(_("On your boarding pass that is: {airport}."), airport=current.validate_at)
            box.add_widget(Factory.VerdictCard(kind="check_required", tone="warning",
                                               title=w(_("Check your trip")), body=text))
        sailings = screen.ids.sailings
        sailings.clear_widgets()  # today's sailings, named in the current language
        for port, sailing in trips.sailings(self.wallet.exit_points, now()):
            button = Factory.TButton(source_text=w.sailing(port, sailing), tone="light")
            button.bind(on_release=lambda _b, p=port, s=sailing: self.choose_sailing(p, s))
            sailings.add_widget(button)

    # --- passport ----------------------------------------------------------------------

    def give_zone(self, text: str) -> None:
        screen = self.screens["passport"]
        try:
            passport = passport_entry.from_zone(text, date.today())
        except passport_entry.EntryError as exc:
            screen.error = self.wording.entry_error(exc.field)
            return
        self._give_passport(passport)

    def give_fields(self, number: str, country: str, birth: str, expiry: str) -> None:
        screen = self.screens["passport"]
        try:
            passport = passport_entry.from_fields(number, country, birth, expiry, date.today())
        except passport_entry.EntryError as exc:
            screen.error = self.wording.entry_error(exc.field)
            return
        self._give_passport(passport)

    def _give_passport(self, passport) -> None:
        self.screens["passport"].error = ""
        self.wallet.keep_passport(passport)  # on disk before anything is shown
        self.wallet.keep_forms([])
        self.show_state()
        self.go("forms")
        self.busy = True
        self.background.run(self.session.give_passport, passport, done=self._refreshed, failed=self._failed)

    # --- forms ------------------------------------------------------------------------

    def refresh(self) -> None:
        if not self.wallet.passport:
            return
        self.background.run(self.session.refresh, done=self._refreshed, failed=self._failed)

    def _refreshed(self, refreshed) -> None:
        self.busy = False
        self.online = refreshed.online
        self.tell(None if refreshed.online else _("No connection: showing what this phone kept."))
        self.show_state()

    def claim(self, text: str) -> None:
        self.busy = True

        def claimed(form):
            self.busy = False
            self.tell(_("Form {form_id} added."), form_id=form.id)
            self.show_state()

        def refused(exc):
            self.busy = False
            if isinstance(exc, ApiError) and exc.code == "passport_mismatch":
                self.tell(_("This form was registered for another passport number. "
                                        "Ask the shop to correct it."))
            elif isinstance(exc, ApiError) and exc.code == "form_not_found":
                self.tell(_("This form is not known. Ask the shop or your refund company."))
            elif isinstance(exc, ApiError):
                self.tell(_("This is not a tax-free form code."))
            else:
                self._failed(exc)

        self.background.run(self.session.claim, text, done=claimed, failed=refused)

    # --- trip -------------------------------------------------------------------------

    def give_boarding_pass(self, text: str) -> None:
        points = self.wallet.exit_points
        here = points[0].code if len(points) == 1 else None
        try:
            trip = trips.from_boarding_pass(text, trips.local_today(), here)
        except trips.TripError:
            self.screens["trip"].error = self.tr(_("Could not read this boarding pass."))
            return
        self.screens["trip"].error = ""
        self.session.keep_trip(trip)
        self.show_state()

    def choose_sailing(self, port, sailing) -> None:
        self.screens["trip"].error = ""
        self.session.keep_trip(trips.ferry(port, sailing, trips.local_today()))
        self.show_state()

    # --- validating ---------------------------------------------------------------------

    def check_gate(self) -> None:
        if self.manager.current != "validate":
            return
        self.background.run(self.session.gate, done=self._gated, failed=lambda exc: None)

    def _gated(self, gate) -> None:
        self.gate_open = gate.open
        self.gate_text = self.wording.gate(gate)

    def validate(self, form_ids: list[str]) -> None:
        if not form_ids or self.busy:
            return
        self.busy = True
        data = self.wallet.trip
        trip = trips.Trip.from_json(data) if data else None
        self.background.run(self.session.validate, form_ids, trip, done=self._validated,
                            failed=self._validation_failed)

    def _validated(self, result) -> None:
        from kivy.factory import Factory

        self.busy = False
        self.online = True
        w = self.wording
        last = self.wallet.last_result or {}
        cards = []
        for v in result.verdicts:
            lines = [w(_("Form {form_id}"), form_id=v.form_id)]
            if v.verdict == "validated" and v.reference:
                lines.append(w(_("Reference: {reference}"), reference=v.reference))
            if v.verdict == "check_required":
                lines.append(w(_("Take your goods, passport and this phone to the customs desk.")))
                desk = v.desk_location or last.get("desk_location")
                if desk:
                    lines.append(w(_("The customs desk is at: {desk}."), desk=desk))
                lines.append(w(BEFORE_CHECK_IN))
            if v.verdict == "refused":
                lines.append(w.refusal(v))
            cards.append(Factory.VerdictCard(kind=v.verdict, tone=VERDICT_TONES.get(v.verdict, "danger"),
                                             title=w(VERDICT_TITLES.get(v.verdict, VERDICT_TITLES["refused"])),
                                             body="\n".join(lines)))
        if result.desk_pass:
            cards.append(Factory.VerdictCard(kind="check_required", tone="warning",
                                             title=w(_("Show this to the officer")), body=""))
        self.screens["result"].show(cards, qr_texture(result.desk_pass) if result.desk_pass else None)
        self.show_state()
        self.go("result")

    def show_desk_pass(self) -> None:
        """The "show this to the officer" QR code again, freshly signed (a
        desk pass lasts 15 minutes; the traveller may reach the desk later)."""
        if self.busy:
            return
        self.busy = True

        def shown(desk_pass: str) -> None:
            from kivy.factory import Factory

            self.busy = False
            self.online = True
            w = self.wording
            lines = [w(_("Take your goods, passport and this phone to the customs desk."))]
            desks = {p.code: p.desk_location for p in self.wallet.exit_points}
            for desk in dict.fromkeys(desks.get(f.exit_point) for f in self.wallet.forms
                                      if f.status == "check_required"):
                if desk:
                    lines.append(w(_("The customs desk is at: {desk}."), desk=desk))
            card = Factory.VerdictCard(kind="check_required", tone="warning", title=w(_("Show this to the officer")),
                                       body="\n".join(lines))
            self.screens["result"].show([card], qr_texture(desk_pass))
            self.go("result")

        self.background.run(self.session.desk_pass, done=shown, failed=self._failed)

    def _validation_failed(self, exc) -> None:
        from kivy.factory import Factory

        self.busy = False
        w = self.wording
        if isinstance(exc, Offline) and not isinstance(exc, RateLimited):
            self.online = False
            body = w(OFFLINE)
        elif isinstance(exc, RateLimited):
            body = w(_("Too many attempts. Wait a minute, or use a kiosk or the customs desk."))
        else:
            body = w(_("The request was refused. Use a kiosk or the customs desk."))
        self.screens["result"].show([Factory.VerdictCard(kind="refused", tone="danger",
                                                         title=w(_("Not validated")), body=body)])
        self.go("result")

    # --- camera -------------------------------------------------------------------------

    def start_camera(self, screen, purpose: str) -> None:
        self.stop_camera()
        screen.scanning = True
        screen.error = ""
        self._scan_screen = screen

        def opened(source):
            if source is None or not screen.scanning:
                screen.scanning = False
                if source is None:
                    screen.error = self.tr(_("No camera. Type it instead."))
                return
            self._scan_loop = scanning.ScanLoop(source, self._decoders(purpose), on_codes=self._codes,
                                                on_frame=self._frame, max_fps=10).start()

        self.background.run(self.frame_source_factory, done=opened,
                            failed=lambda exc: setattr(screen, "scanning", False))

    def _decoders(self, purpose: str):
        if purpose == "passport":
            from shared.mrz_ocr import AgreeingReads, TesseractMrzReader

            if self._mrz_reader is None:
                self._mrz_reader = TesseractMrzReader()
            return [AgreeingReads(self._mrz_reader, frames=2)]
        if purpose == "boarding_pass":
            return [scanning.Decoder(scanning.BOARDING_PASS)]
        return [scanning.Decoder(scanning.QR)]

    def _frame(self, frame) -> None:  # scan-loop thread
        with self._frame_lock:
            self._latest_frame = frame

    def _show_frame(self, _dt) -> None:
        with self._frame_lock:
            frame, self._latest_frame = self._latest_frame, None
        if frame is not None and self._scan_screen is not None and self._scan_screen.scanning:
            self._scan_screen.ids.camera.show(frame)

    def _codes(self, codes) -> None:  # scan-loop thread
        text = codes[0].text
        Clock.schedule_once(lambda _dt: self._scanned(text), 0)

    def _scanned(self, text: str) -> None:
        screen = self._scan_screen
        if screen is None:
            return
        purpose = screen.camera_purpose
        self.stop_camera()
        if purpose == "passport":
            self.give_zone(text)
        elif purpose == "boarding_pass":
            self.give_boarding_pass(text)
        else:
            self.claim(text)

    def stop_camera(self) -> None:
        loop, self._scan_loop = self._scan_loop, None
        if loop is not None:
            loop.stop()
        if self._scan_screen is not None:
            self._scan_screen.scanning = False
            self._scan_screen.ids.camera.clear()
        self._scan_screen = None

    # --- forget me and errors -------------------------------------------------------------

    def forget_me(self) -> None:
        self.stop_camera()
        self.session.forget()
        self.tell(None)
        self.gate_open = False
        self.screens["result"].show([])
        for field in ("zone", "number", "country", "birth", "expiry"):
            self.screens["passport"].ids[field].text = ""
        self.show_state()
        self.go("passport")

    def _failed(self, exc) -> None:
        self.busy = False
        if isinstance(exc, RateLimited):
            self.tell(_("Too many attempts. Wait a minute, or use a kiosk or the customs desk."))
        elif isinstance(exc, Offline):
            self.online = False
            self.tell(_("No connection: showing what this phone kept."))
        elif isinstance(exc, ApiError):
            self.tell(_("The request was refused. Use a kiosk or the customs desk."))
        else:
            log.error("unexpected error: %r", exc)


def qr_texture(payload: str):
    """The desk pass as a QR code texture."""
    import qrcode

    image = qrcode.make(payload, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return CoreImage(buffer, ext="png").texture


def now() -> datetime:
    return datetime.now(timezone.utc)
