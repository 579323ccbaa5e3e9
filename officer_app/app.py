"""The officer's handheld: screens, navigation and the session's rhythm.

The app owns one :class:`~officer_app.desk.Desk` and runs every call to it
on worker threads (:class:`~kivy_common.background.Background`); results
come back to the screens on the UI thread. The clock drives what happens by
itself: the queue refreshes and waiting decisions are sent every
``config.refresh`` seconds, the access token is refreshed before it
expires, and the handheld locks after ``config.idle_lock`` seconds without
a touch or a key. With a device token, a heartbeat thread reports the
handheld's health to the fleet page every ``config.heartbeat`` seconds.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager

from shared.client import ApiError, KioskClient, Offline
from shared.decision_queue import DecisionQueue
from shared.heartbeat import DeviceHealth, HeartbeatLoop, free_disk_bytes
from shared.officer_client import NotSignedIn, OfficerClient

from . import wording
from kivy_common.background import Background
from .config import OfficerConfig
from .desk import BAD_ZONE, Case, DecisionResult, Desk, Draft, FindError, NotAnOfficer, QueuedTraveller
from .wording import Phrase, _

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
# Screens, in the order they are built; each has NAME.py and NAME.kv.
SCREENS = ("login", "exit_point", "queue", "find", "check", "confirm", "conflict", "history", "lock")
# Screens that show no personal data: idle locking does not apply to them.
UNLOCKED_SCREENS = {"login", "lock"}
TOKEN_CHECK_SECONDS = 15.0
_kv_loaded = False


def load_kv() -> None:
    """Load the kv rules once per process (several apps may be built in one
    process, e.g. a restart in a test)."""
    global _kv_loaded
    if _kv_loaded:
        return
    Builder.load_file(str(HERE / "widgets.kv"))
    for name in SCREENS:
        Builder.load_file(str(HERE / "screens" / f"{name}.kv"))
    _kv_loaded = True


# The officer's choice of language, kept in the handheld's data folder.
LANGUAGE_FILE = "language"


class OfficerApp(App):
    title = "Tax-free desk"

    officer_name = StringProperty("")
    exit_point_name = StringProperty("")
    online = BooleanProperty(True)
    waiting_count = NumericProperty(0)  # decisions saved, not sent yet
    conflict_count = NumericProperty(0)  # decisions the API refused, not yet seen
    notice = StringProperty("")  # one line at the top of the queue screen (a Phrase, or the API's words)
    language = StringProperty("en")  # "nl" or "en": every text on every screen
    busy = BooleanProperty(False)  # a request the officer is waiting for
    case = ObjectProperty(None, allownone=True)
    draft = ObjectProperty(None, allownone=True)

    def __init__(self, config: OfficerConfig, *, frame_source_factory=None,
                 client: OfficerClient | None = None, **kwargs):
        super().__init__(**kwargs)
        self.settings = config
        self.frame_source_factory = frame_source_factory or config.frame_source
        self.decisions = DecisionQueue(Path(config.data_dir) / "decisions.sqlite3")
        self.desk = Desk(client or OfficerClient(config.api_url), self.decisions, config.data_dir)
        self.language = self._chosen_language() or config.language
        self.background = Background()
        self.travellers: list[QueuedTraveller] = []
        self.queue_updated_at: float | None = None
        self.last_activity = time.monotonic()
        self._refreshing = False
        self._syncing = False
        self._locked_from = "queue"
        self._events = []
        self.heartbeat: HeartbeatLoop | None = None
        # None without a camera; the find screen says when it fails or works.
        self.camera_ok: bool | None = None if config.camera.strip().lower() in ("", "none", "off") else True

    # --- building -------------------------------------------------------------------

    def build(self):
        load_kv()
        from .screens import build_screen

        self.manager = ScreenManager(transition=NoTransition())
        for name in SCREENS:
            self.manager.add_widget(build_screen(name))
        self.manager.current = "login"
        self._update_waiting()
        return self.manager

    def on_start(self):
        Window.clearcolor = (0.94, 0.95, 0.96, 1)
        Window.bind(on_touch_down=self._activity, on_key_down=self._activity,
                    on_textinput=self._activity)
        self._events = [
            Clock.schedule_interval(self._tick_idle, 1.0),
            Clock.schedule_interval(self._tick_token, TOKEN_CHECK_SECONDS),
            Clock.schedule_interval(self._tick_refresh, self.settings.refresh),
        ]
        if self.settings.device_token:
            client = KioskClient(self.settings.api_url, self.settings.device_token)
            self.heartbeat = HeartbeatLoop(client.heartbeat, self.health, self.settings.heartbeat).start()

    def on_stop(self):
        for event in self._events:
            event.cancel()
        self._events = []
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None
        Window.unbind(on_touch_down=self._activity, on_key_down=self._activity,
                      on_textinput=self._activity)
        find = self.screen("find")
        if find is not None:
            find.stop_camera()
        self.background.shutdown()
        self.decisions.close()

    # --- language ------------------------------------------------------------------------

    def tr(self, message: str, *_bindings, **fields) -> str:
        """``message`` in the officer's language. kv passes ``app.language``
        as a binding so the text follows a switch."""
        return wording.tr(message, self.language, **fields)

    def say(self, text: str | None, *_bindings) -> str:
        """What a screen shows for ``text``: a Phrase in the officer's
        language, data as it is."""
        return wording.say(text, self.language)

    def choose_language(self, code: str) -> None:
        """The NL | EN switch: every visible text changes at once, and the
        choice is kept on the handheld for the next start."""
        if code not in wording.LANGUAGES:
            raise ValueError(f"no language {code!r} on the handheld")
        self.language = code
        path = Path(self.settings.data_dir) / LANGUAGE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(code)
        tmp.replace(path)

    def _chosen_language(self) -> str | None:
        try:
            code = (Path(self.settings.data_dir) / LANGUAGE_FILE).read_text().strip()
        except OSError:
            return None
        return code if code in wording.LANGUAGES else None

    def on_language(self, *_args):
        self.title = self.tr(_("Tax-free desk"))

    def screen(self, name: str):
        return self.manager.get_screen(name) if self.manager.has_screen(name) else None

    def health(self) -> DeviceHealth:
        """What the heartbeat reports (on its own thread): decisions waiting
        to be sent, the camera, the disk holding them."""
        waiting = self.decisions.pending()
        oldest = datetime.fromisoformat(waiting[0].queued_at) if waiting else None
        return DeviceHealth(queue_depth=len(waiting), oldest_queued_at=oldest, queue_writable=True,
                            camera_ok=self.camera_ok, free_disk_bytes=free_disk_bytes(self.settings.data_dir))

    def go(self, name: str) -> None:
        self.manager.current = name

    # --- activity and locking ----------------------------------------------------------

    def _activity(self, *_args):
        self.last_activity = time.monotonic()

    def _tick_idle(self, _dt):
        if self.manager.current in UNLOCKED_SCREENS or self.desk.officer is None:
            return
        if time.monotonic() - self.last_activity >= self.settings.idle_lock:
            self.lock()

    def lock(self) -> None:
        """Hide everything behind the officer's password (the session stays)."""
        if self.manager.current in UNLOCKED_SCREENS:
            return
        self._locked_from = self.manager.current
        find = self.screen("find")
        find.stop_camera()
        self.go("lock")

    def unlock(self, password: str) -> None:
        screen = self.screen("lock")

        def checked(ok: bool):
            if ok:
                self.last_activity = time.monotonic()
                screen.clear()
                self.go(self._locked_from if self._locked_from not in UNLOCKED_SCREENS else "queue")
            else:
                screen.show_error(Phrase(_("Wrong password.")))

        self.background.run(self.desk.unlock, password, done=checked, failed=self.show_error)

    # --- signing in and out ---------------------------------------------------------------

    def sign_in(self, username: str, password: str) -> None:
        screen = self.screen("login")
        if not username.strip() or not password:
            screen.show_error(Phrase(_("Enter your username and password.")))
            return
        self.busy = True

        def signed_in(officer):
            self.busy = False
            self.officer_name = officer.username
            self.last_activity = time.monotonic()
            screen.clear()
            self._update_waiting()
            self.sync_now()
            self.go("exit_point")

        def refused(exc):
            self.busy = False
            if isinstance(exc, ApiError) and exc.status == 429:
                screen.show_error(wording.problem("too_many_requests", exc.detail))
            elif isinstance(exc, ApiError):
                screen.show_error(wording.problem(exc.code, exc.detail))
            elif isinstance(exc, NotAnOfficer):
                screen.show_error(exc.text)
            elif isinstance(exc, Offline):
                screen.show_error(Phrase(_("The tax-free system cannot be reached. Check the network.")))
            else:
                screen.show_error(str(exc))

        self.background.run(self.desk.sign_in, username, password, done=signed_in, failed=refused)

    def sign_out(self) -> None:
        self.screen("find").stop_camera()
        leave = self.desk.sign_out()
        if leave is not None:
            # Off duty at the desk too, when the network allows; if not, the
            # duty ends with the shift or at the next sign-on anyway.
            self.background.run(leave, done=lambda _r: None, failed=lambda _exc: None)
        self.officer_name = ""
        self.exit_point_name = ""
        self.travellers = []
        self.case = None
        self.draft = None
        self.screen("queue").show(self.travellers)
        self._update_waiting()
        self.go("login")

    def session_ended(self) -> None:
        """The API refused the token (expired while the handheld slept)."""
        waiting = self.decisions.count(self.desk.officer.username) if self.desk.officer else 0
        self.sign_out()
        message = Phrase(_("Your session ended: log in again."))
        if waiting:
            message = Phrase.join(" ", [message, wording.plural(
                waiting, _("{count} decision saved on this handheld will then be sent."),
                _("{count} decisions saved on this handheld will then be sent."))])
        self.screen("login").show_error(message)

    def _tick_token(self, _dt):
        if self.desk.officer is None:
            return
        self.background.run(self.desk.keep_signed_in, done=lambda _r: self._note_online(),
                            failed=self.show_error)

    # --- the desk -----------------------------------------------------------------------------

    def load_exit_points(self) -> None:
        screen = self.screen("exit_point")
        self.background.run(self.desk.exit_points, done=screen.show, failed=self.show_error)

    def choose_exit_point(self, exit_point: dict) -> None:
        """Go on duty at the exit point's desk (the API records it), then
        show its queue."""
        screen = self.screen("exit_point")
        self.busy = True

        def on_duty(_duty):
            self.busy = False
            self._note_online()
            self.exit_point_name = f"{exit_point['code']} {exit_point['name']}"
            self.travellers = []
            self.screen("queue").show(self.travellers)
            self.go("queue")
            self.refresh_queue()

        def refused(exc):
            self.busy = False
            if isinstance(exc, Offline):
                screen.show_error(Phrase(_("The tax-free system cannot be reached: you can go on duty once it can.")))
            elif isinstance(exc, ApiError) and not isinstance(exc, NotSignedIn):
                screen.show_error(wording.problem(exc.code, exc.detail))
            else:
                self.show_error(exc)

        self.background.run(self.desk.choose_exit_point, exit_point, done=on_duty, failed=refused)

    # --- the queue ------------------------------------------------------------------------------

    def _tick_refresh(self, _dt):
        if self.desk.officer is None:
            return
        self.sync_now()
        if self.desk.exit_point is not None and self.manager.current != "lock":
            self.refresh_queue()

    def refresh_queue(self) -> None:
        if self._refreshing or self.desk.exit_point is None:
            return
        self._refreshing = True

        def shown(travellers):
            self._refreshing = False
            self.travellers = travellers
            self.queue_updated_at = time.time()
            self._note_online()
            self.screen("queue").show(travellers)

        def failed(exc):
            self._refreshing = False
            self.show_error(exc)

        self.background.run(self.desk.queue, done=shown, failed=failed)

    def open_traveller(self, traveller: QueuedTraveller) -> None:
        self.busy = True
        self.background.run(self.desk.open_traveller, traveller, done=self.show_case,
                            failed=self.show_error)

    # --- finding ------------------------------------------------------------------------------------

    def find(self, text: str, how: str | None = None) -> None:
        screen = self.screen("find")
        self.busy = True

        def not_found(exc):
            self.busy = False
            if isinstance(exc, FindError):
                screen.show_error(exc.text)
            elif isinstance(exc, ApiError) and not isinstance(exc, NotSignedIn):
                screen.show_error(wording.problem(exc.code, exc.detail))
            else:
                self.show_error(exc)
                if isinstance(exc, Offline):
                    screen.show_error(Phrase(_("The tax-free system cannot be reached: forms in the queue "
                                               "can still be opened from the Queue screen.")))

        self.background.run(self.desk.find, text, how, done=self.show_case, failed=not_found)

    def open_check(self, form: dict) -> None:
        """Open a check at this desk for a form not yet validated (the
        traveller came straight to the desk), then show it decidable."""
        self.busy = True

        def opened(updated: dict):
            self.busy = False
            self._note_online()
            self._replace_in_case(updated)
            self.notice = Phrase(wording.TEXTS["check_opened"], form_id=updated["id"])
            if self.case is not None:
                self.screen("check").show(self.case)

        def failed(exc):
            self.busy = False
            if isinstance(exc, FindError):
                self.screen("check").show_error(exc.text)
            elif isinstance(exc, ApiError) and not isinstance(exc, NotSignedIn):
                self.screen("check").show_error(wording.problem(exc.code, exc.detail, form_id=form["id"]))
            else:
                self.show_error(exc)

        self.background.run(self.desk.open_check, form, done=opened, failed=failed)

    def show_case(self, case: Case) -> None:
        self.busy = False
        self._note_online()
        self.case = case
        self.screen("check").show(case)
        self.go("check")

    def compare_passport(self, text: str) -> None:
        """A passport read on the check screen, beside the forms already open."""
        from shared import mrz

        screen = self.screen("check")
        try:
            passport = mrz.parse_td3(text)
        except mrz.MrzError as exc:
            screen.show_error(Phrase(BAD_ZONE, problem=str(exc)))
            return
        self.case.passport = passport
        screen.show(self.case)

    # --- deciding ---------------------------------------------------------------------------------

    def choose(self, form: dict, outcome: str, presence: dict[int, bool]) -> None:
        self.draft = Draft.for_form(form, outcome, presence)
        self.screen("confirm").show(self.draft)
        self.go("confirm")

    def send(self, draft: Draft) -> None:
        if draft.problems():
            self.screen("confirm").show(draft)
            return
        self.busy = True
        self.background.run(self.desk.decide, draft, done=self._decided, failed=self._decision_failed)

    def _decided(self, result: DecisionResult) -> None:
        self.busy = False
        self.draft = None
        self._update_waiting()
        if result.kind == "refused":
            self._note_online()
            self.show_conflicts()
            return
        if result.kind == "sent":
            self._note_online()
            self.notice = Phrase(_("{form_id}: {outcome}, recorded."), form_id=result.form_id,
                                 outcome=wording.outcome_in_sentence(result.outcome))
            self._replace_in_case(result.form)
        else:
            self.online = self.desk.online
            self.notice = Phrase(
                _("{form_id}: saved on this handheld. It will be sent after you log in again.") if result.signed_out
                else _("{form_id}: saved on this handheld. It will be sent when the network is back."),
                form_id=result.form_id)
        if result.signed_out:
            self.session_ended()
            return
        if self.case is not None and any(
                f["status"] == "check_required" and self.desk.waiting_for(f["id"]) is None
                for f in self.case.forms):
            self.screen("check").show(self.case)
            self.go("check")
        else:
            self.go("queue")
            self.refresh_queue()

    def _decision_failed(self, exc):
        self.busy = False
        if isinstance(exc, ValueError):
            self.screen("confirm").show_error(exc.args[0] if exc.args else str(exc))
        else:
            self.show_error(exc)

    def _replace_in_case(self, form: dict | None) -> None:
        if form is None or self.case is None:
            return
        self.case.forms = [form if f["id"] == form["id"] else f for f in self.case.forms]

    # --- sending what waits, and conflicts ------------------------------------------------------

    def sync_now(self) -> None:
        if self._syncing or self.desk.officer is None:
            return
        if not self.decisions.count(self.desk.officer.username):
            self._update_waiting()
            return
        self._syncing = True

        def synced(report):
            self._syncing = False
            self._update_waiting()
            self.online = self.desk.online
            if report.sent:
                self.notice = wording.plural(len(report.sent), _("{count} saved decision sent."),
                                             _("{count} saved decisions sent."))
                for _item, answer in report.sent:
                    self._replace_in_case(answer.form)
            if report.refused:
                # Not shown over whatever the officer is doing: the queue
                # screen's banner says so until they look.
                self.notice = wording.plural(len(report.refused),
                                             _("{count} saved decision not recorded: see the red button."),
                                             _("{count} saved decisions not recorded: see the red button."))

        def failed(exc):
            self._syncing = False
            self._update_waiting()
            self.show_error(exc)

        self.background.run(self.desk.sync, done=synced, failed=failed)

    def show_conflicts(self) -> None:
        conflicts = self.desk.conflicts()
        self.conflict_count = len(conflicts)
        if not conflicts:
            self.go("queue")
            return
        screen = self.screen("conflict")
        screen.show(conflicts[0], len(conflicts))
        self.go("conflict")
        if conflicts[0].conflict and conflicts[0].recorded_instead is None:
            self.background.run(self.desk.complete_conflict, conflicts[0],
                                done=lambda c: screen.show(c, len(conflicts)),
                                failed=lambda exc: None)

    def acknowledge(self, refused) -> None:
        self.desk.acknowledge(refused)
        self._update_waiting()
        if self.conflict_count:
            self.show_conflicts()
        else:
            self.go("queue")
            self.refresh_queue()

    def _update_waiting(self) -> None:
        officer = self.desk.officer
        self.waiting_count = self.decisions.count(officer.username) if officer else 0
        self.conflict_count = len(self.desk.conflicts()) if officer else 0

    # --- history -----------------------------------------------------------------------------------

    def load_history(self, query: str = "") -> None:
        screen = self.screen("history")
        self.background.run(self.desk.history, query, done=screen.show, failed=self.show_error)

    # --- errors ------------------------------------------------------------------------------------

    def _note_online(self) -> None:
        self.online = self.desk.online

    def show_error(self, exc: BaseException) -> None:
        """What to do about a failure no screen handled itself."""
        self.busy = False
        if isinstance(exc, NotSignedIn):
            self.session_ended()
        elif isinstance(exc, Offline):
            if self.online:  # said once, when the network goes
                self.notice = Phrase(_("Offline: decisions are saved on this handheld and sent later."))
            self.online = False
        elif isinstance(exc, ApiError):
            self.notice = wording.problem(exc.code, exc.detail) or str(exc)
        elif isinstance(exc, FindError):
            self.notice = exc.text
        else:
            log.exception("unexpected error", exc_info=exc)
            self.notice = Phrase(_("Something went wrong: {problem}"), problem=str(exc))
