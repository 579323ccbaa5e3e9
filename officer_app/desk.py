"""The officer's work at the desk, without any user interface.

:class:`Desk` holds one handheld's session (the officer signed in, the exit
point of the desk, a memory cache of forms) and does the work behind every
screen: the queue grouped by traveller, finding forms by QR code, passport
zone or typed id, decisions through the durable queue, the day's history.
Its methods block on the network: the app calls them on worker threads;
tests call them directly.

Forms of the travellers in the queue are fetched ahead into memory, so an
officer whose network drops in the middle of a check can still open the
traveller, decide and have the decision sent later. The cache lives in
memory only (it holds passport numbers) and is dropped at logout.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Callable

from shared import countries, formid, mrz, qrtoken
from shared.client import ApiError, Offline
from shared.decision_queue import (
    DecisionQueue,
    PendingDecision,
    RefusedDecision,
    SyncReport,
    decision_event,
    new_idempotency_key,
)
from shared.officer_client import NotSignedIn, Officer, OfficerClient, looks_like_desk_pass

from . import wording
from .wording import Phrase, _

log = logging.getLogger(__name__)

OPEN_STATUSES = ("check_required", "issued")
# How many forms one queue refresh fetches ahead (bounded: a long queue must
# not turn every refresh into a burst of requests).
PREFETCH_PER_REFRESH = 20


class FindError(Exception):
    """What the officer is told when a search finds nothing to open: a
    :class:`~officer_app.wording.Phrase` (its English is the message)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class NotAnOfficer(FindError):
    """The credentials are right but belong to someone who is not an officer."""


# --- the queue -------------------------------------------------------------------

@dataclass(frozen=True)
class QueuedTraveller:
    """One traveller waiting at the desk, with all their forms to check."""

    traveller_ref: str
    name: str
    passport: str  # masked: the officer sees the full number once the passport is in hand
    passport_country: str
    form_ids: tuple[str, ...]
    opened_at: datetime  # the oldest check: how long the traveller has waited
    total_cents: int
    line_count: int
    rules: tuple[tuple[str, str], ...]  # (code, detail), each code once

    def waited(self, now: datetime) -> timedelta:
        return now - self.opened_at


def group_queue(checks: list[dict]) -> list[QueuedTraveller]:
    """Pending checks as travellers, the one waiting longest first."""
    groups: dict[str, list[dict]] = {}
    for check in checks:
        groups.setdefault(check["traveller_ref"], []).append(check)
    travellers = []
    for ref, items in groups.items():
        items.sort(key=lambda c: c["opened_at"])
        rules: dict[str, str] = {}
        for check in items:
            for fired in check.get("fired_rules") or []:
                rules.setdefault(fired.get("code", ""), fired.get("detail", ""))
        first = items[0]
        travellers.append(QueuedTraveller(
            traveller_ref=ref,
            name=first["traveller_name"],
            passport=first["passport_number"],
            passport_country=first["passport_country"],
            form_ids=tuple(c["form_id"] for c in items),
            opened_at=datetime.fromisoformat(first["opened_at"]),
            total_cents=sum(c["total_cents"] for c in items),
            line_count=sum(c["line_count"] for c in items),
            rules=tuple(rules.items()),
        ))
    travellers.sort(key=lambda t: (t.opened_at, t.traveller_ref))
    return travellers


# Why a QR code is not a genuine form, by the refusal's reason code.
QR_REFUSALS = {
    "malformed_token": Phrase(_("This QR code is not a tax-free form.")),
    "unknown_key": Phrase(_("This QR code was not signed by the tax-free system: possibly forged.")),
    "bad_signature": Phrase(_("This QR code has been altered: possibly forged.")),
}
BAD_ZONE = _("The passport zone did not read correctly ({problem}). Read it again.")


# --- a case: the traveller in front of the officer -----------------------------------

@dataclass(frozen=True)
class Comparison:
    """One field of the form's traveller against the passport read."""

    label: str
    on_form: str
    on_passport: str

    @property
    def matches(self) -> bool:
        return _squash(self.on_form) == _squash(self.on_passport)


# A field that differs, inside a sentence.
MISMATCHES = {
    "Name": Phrase(_("name")),
    "Passport number": Phrase(_("passport number")),
    "Issued by": Phrase(_("issued by")),
    "Date of birth": Phrase(_("date of birth")),
}


def _squash(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


@dataclass
class Case:
    """A traveller and their forms, as opened from the queue or a search."""

    forms: list[dict]
    found_by: str  # "queue", "qr", "passport", "id", "desk_pass"
    passport: mrz.Passport | None = None  # the passport zone read at the desk, if any
    notes: list[str] = field(default_factory=list)  # what the search itself noticed
    cached_at: datetime | None = None  # set when shown from the cache (network down)

    @property
    def traveller(self) -> dict:
        return self.forms[0]["traveller"]

    @property
    def open_forms(self) -> list[dict]:
        return [f for f in self.forms if f["status"] == "check_required"]

    def comparisons(self) -> list[Comparison]:
        """The form's traveller beside the passport read (nothing if none was read)."""
        p = self.passport
        if p is None:
            return []
        t = self.traveller
        return [
            Comparison(Phrase(_("Name")), f"{t['first_name']} {t['last_name']}", p.full_name),
            Comparison(Phrase(_("Passport number")), t["passport_number"], p.document_number),
            Comparison(Phrase(_("Issued by")), t["passport_country"], p.issuing_country or p.issuing_state),
            Comparison(Phrase(_("Date of birth")), t["date_of_birth"], p.birth_date.isoformat()),
        ]

    def warnings(self, today: date) -> list[str]:
        """What the officer should look at before deciding."""
        found = list(self.notes)
        t = self.traveller
        if countries.is_eu(t.get("residence_country")):
            found.append(Phrase(_("Residence {country} is inside the EU."), country=t["residence_country"]))
        elif countries.is_eu(t.get("passport_country")):
            found.append(Phrase(_("EU passport: ask for proof of residence outside the EU.")))
        if self.passport is not None:
            if self.passport.expired:
                found.append(Phrase(_("The passport expired on {date}."), date=self.passport.expiry_date))
            mismatched = [MISMATCHES[c.label] for c in self.comparisons() if not c.matches]
            if mismatched:
                found.append(Phrase(_("Passport does not match the form: {fields}."),
                                    fields=Phrase.join(", ", mismatched)))
        for form in self.forms:
            deadline = date.fromisoformat(form["export_deadline"])
            if deadline < today and form["status"] in OPEN_STATUSES:
                found.append(Phrase(_("Form {form_id}: the export deadline passed on {date}."),
                                    form_id=form["id"], date=deadline))
        if self.cached_at is not None:
            found.append(Phrase(_("Offline: details as loaded at {time}."),
                                time=wording.local_time(self.cached_at)))
        return found


# --- a decision before it is sent ------------------------------------------------------

@dataclass
class Draft:
    """An officer's decision on one form, before it is sent."""

    form: dict
    outcome: str  # "validated", "partially_validated", "rejected"
    presence: dict[int, bool]  # line number -> present
    reason_code: str | None = None
    note: str = ""
    idempotency_key: str = field(default_factory=new_idempotency_key)

    @classmethod
    def for_form(cls, form: dict, outcome: str, presence: dict[int, bool]) -> "Draft":
        lines = {item["line"]: presence.get(item["line"], True) for item in form["items"]}
        if outcome == "validated":
            lines = {n: True for n in lines}
        return cls(form, outcome, lines)

    @property
    def form_id(self) -> str:
        return self.form["id"]

    def lines(self) -> list[tuple[dict, bool]]:
        return [(item, self.presence[item["line"]]) for item in self.form["items"]]

    def validated_total_cents(self) -> int:
        if self.outcome == "rejected":
            return 0
        return sum(item["total_cents"] for item, present in self.lines() if present)

    def problems(self) -> list[str]:
        """Why the decision cannot be sent yet (the API's rules, checked
        before sending so a decision made offline is not refused later)."""
        present = sum(self.presence.values())
        found = []
        if self.outcome == "validated" and present != len(self.presence):
            found.append(Phrase(_("A line is marked not present: validate the lines shown instead.")))
        if self.outcome == "partially_validated":
            if present == 0:
                found.append(Phrase(_("No line is present: reject the form instead.")))
            elif present == len(self.presence):
                found.append(Phrase(_("Every line is present: validate the form in full.")))
        if self.outcome == "rejected":
            if self.reason_code not in wording.REASONS:
                found.append(Phrase(_("Choose the reason for the rejection.")))
            elif self.reason_code == "other" and not self.note.strip():
                found.append(Phrase(_("Describe the reason in a note.")))
        return found

    def body(self) -> dict:
        """Exactly what is POSTed to /forms/{id}/decision."""
        body: dict = {
            "outcome": self.outcome,
            "lines": [{"line": n, "present": p} for n, p in sorted(self.presence.items())],
        }
        if self.outcome == "rejected":
            body["reason_code"] = self.reason_code
        if self.note.strip():
            body["note"] = self.note.strip()
        return body


@dataclass(frozen=True)
class DecisionResult:
    kind: str  # "sent", "saved" (waiting in the durable queue), "refused"
    form_id: str
    outcome: str
    form: dict | None = None  # the form as the API returned it ("sent")
    refused: RefusedDecision | None = None
    signed_out: bool = False  # "saved" because the session ended, not the network


# --- history ----------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryEntry:
    form_id: str
    traveller_name: str
    outcome: str
    at: datetime | None
    state: str  # "recorded", "waiting" (not sent yet), "not_recorded" (refused)
    detail: str = ""
    seq: int | None = None  # the local queue's row, for "waiting" and "not_recorded"

    def matches(self, query: str, language: str = "en") -> bool:
        """Every word of ``query`` is in the entry, as the officer reads it
        (in ``language``) or as the API names it."""
        words = query.lower().split()
        shown = [wording.say(wording.outcome(self.outcome), language), wording.say(self.detail, language),
                 wording.say(STATE_NAMES.get(self.state, ""), language)]
        text = " ".join([self.form_id, self.traveller_name, wording.outcome(self.outcome),
                         self.outcome, self.detail, self.state.replace("_", " "), *shown]).lower()
        return all(word in text for word in words)


# How the history names an entry's state.
STATE_NAMES = {
    "waiting": Phrase(_("saved on this handheld, not sent yet")),
    "not_recorded": Phrase(_("NOT recorded")),
}


# --- unlocking without the network -------------------------------------------------------

class PasswordCheck:
    """Verifies the officer's password locally to unlock the handheld, so
    unlocking works without network. Held in memory only."""

    ITERATIONS = 60_000

    def __init__(self, password: str):
        self._salt = os.urandom(16)
        self._digest = self._hash(password)

    def _hash(self, password: str) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", password.encode(), self._salt, self.ITERATIONS)

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(self._digest, self._hash(password))


# --- the desk ----------------------------------------------------------------------------

class Desk:
    """One handheld's session at the customs desk. Thread-safe."""

    def __init__(self, client: OfficerClient, decisions: DecisionQueue, data_dir: str | Path):
        self.client = client
        self.decisions = decisions
        self.data_dir = Path(data_dir)
        self.exit_point: dict | None = None
        self.online = True
        self._lock = threading.Lock()
        self._password: PasswordCheck | None = None
        self._forms: dict[str, tuple[dict, datetime]] = {}
        self._results: dict[int, DecisionResult] = {}
        self._fired: dict[str, list[dict]] = {}  # form id -> risk rules, from the queue
        self._keys = self._load_keys()

    @property
    def officer(self) -> Officer | None:
        return self.client.officer

    # --- session -----------------------------------------------------------------

    def sign_in(self, username: str, password: str) -> Officer:
        officer = self.client.login(username.strip(), password)
        if officer.role != "officer":
            self.client.logout()
            raise NotAnOfficer(Phrase(_("{username} is not a customs officer account."), username=username))
        self._password = PasswordCheck(password)
        self.online = True
        return officer

    def unlock(self, password: str) -> bool:
        check = self._password
        return check is not None and check.matches(password)

    def keep_signed_in(self) -> bool:
        """Refresh the token when it is due; True if it was refreshed.
        Offline: try again next time (the token is still valid a while)."""
        if not self.client.refresh_due():
            return False
        try:
            self.client.refresh()
        except Offline:
            self.online = False
            return False
        self.online = True
        return True

    def sign_out(self) -> Callable[[], None] | None:
        """Forget the officer, the token and every form held in memory, at
        once. Their waiting decisions stay on disk and are sent at their next
        login. Returns the call that ends their duty at the desk on the API
        (to run in the background; it needs the network), or None if they
        were on duty nowhere."""
        leave = self.client.detached().sign_off if self.exit_point is not None else None
        self.client.logout()
        self._password = None
        self.exit_point = None
        with self._lock:
            self._forms.clear()
            self._results.clear()
            self._fired.clear()
        return leave

    def exit_points(self) -> list[dict]:
        return self._online(self.client.exit_points)

    def choose_exit_point(self, exit_point: dict) -> dict:
        """Go on duty at ``exit_point``'s desk: the API records it, and takes
        this officer's decisions only on the checks of that exit point."""
        duty = self._online(self.client.sign_on, exit_point["code"])
        self.exit_point = exit_point
        return duty

    # --- the queue -------------------------------------------------------------------

    def queue(self) -> list[QueuedTraveller]:
        """Travellers waiting at this desk's exit point, oldest first; their
        forms are fetched ahead into memory for offline checks."""
        code = self.exit_point["code"] if self.exit_point else None
        checks = self._online(self.client.checks, exit_point=code, status="pending")
        with self._lock:
            self._fired.update({c["form_id"]: c.get("fired_rules") or [] for c in checks})
        travellers = group_queue(checks)
        self._prefetch([fid for t in travellers for fid in t.form_ids])
        return travellers

    def _prefetch(self, form_ids: list[str]) -> None:
        with self._lock:
            missing = [fid for fid in form_ids if fid not in self._forms]
        for form_id in missing[:PREFETCH_PER_REFRESH]:
            try:
                self.form(form_id)
            except (Offline, ApiError):
                return  # next refresh tries again

    def form(self, form_id: str) -> dict:
        """A form from the API (cached), or from the cache when offline."""
        try:
            form = self._online(self.client.form, form_id)
        except Offline:
            cached = self.cached_form(form_id)
            if cached is None:
                raise
            return cached[0]
        self.remember(form)
        return form

    def remember(self, form: dict) -> None:
        with self._lock:
            self._forms[form["id"]] = (form, datetime.now(timezone.utc))

    def fired_rules(self, form_id: str) -> list[dict]:
        """The risk rules that sent a form to the desk, as the queue said."""
        with self._lock:
            return list(self._fired.get(form_id, []))

    def cached_form(self, form_id: str) -> tuple[dict, datetime] | None:
        with self._lock:
            return self._forms.get(form_id)

    def open_traveller(self, traveller: QueuedTraveller) -> Case:
        forms, cached_at = [], None
        for form_id in traveller.form_ids:
            form = self.form(form_id)
            if not self.online:
                cached_at = self.cached_form(form_id)[1]
            forms.append(form)
        return Case(forms, "queue", cached_at=cached_at)

    # --- finding --------------------------------------------------------------------------

    def find(self, text: str, how: str | None = None) -> Case:
        """Open what the officer scanned or typed: a passport zone, a form id
        or a form's QR payload (``how`` forces one)."""
        text = (text or "").strip()
        if not text:
            raise FindError(Phrase(_("Scan a QR code, read the passport or type a form id.")))
        if how == "passport" or (how is None and mrz.looks_like_mrz(text)):
            return self.find_by_passport(text)
        if how == "id" or (how is None and formid.is_valid_form_id(text)):
            return self.find_by_id(text)
        if looks_like_desk_pass(text):
            return self.find_by_desk_pass(text)
        return self.find_by_qr(text)

    def find_by_desk_pass(self, desk_pass: str) -> Case:
        """The traveller who shows the "show this to the officer" QR code of
        their app: their forms, those waiting for a check first; forms not
        validated yet can have a check opened here."""
        try:
            forms = self._online(self.client.desk_traveller, desk_pass)
        except ApiError as exc:
            if exc.code in ("desk_pass_expired", "invalid_desk_pass", "not_on_duty"):
                raise FindError(wording.problem(exc.code, exc.detail)) from None
            raise
        open_forms = [f for f in forms if f["status"] in OPEN_STATUSES]
        if not open_forms:
            raise FindError(Phrase(wording.TEXTS["desk_pass_no_open_forms"]))
        with self._lock:
            for form in open_forms:
                if form.get("check"):
                    self._fired[form["id"]] = form["check"].get("fired_rules") or []
        for form in open_forms:
            self.remember(form)
        return Case(open_forms, "desk_pass")

    def open_check(self, form: dict) -> dict:
        """Open a check at this desk for a form not yet validated (the
        traveller came straight to the desk); returns the form as it is now."""
        if self.exit_point is None:
            raise FindError(Phrase(wording.TEXTS["choose_exit_point"]))
        try:
            # Opened where the API has the officer on duty: the desk chosen
            # at sign-on.
            check = self._online(self.client.open_check, form["id"], new_idempotency_key())
        except ApiError as exc:
            if exc.code in ("not_on_duty", "form_not_open"):
                raise FindError(wording.problem(exc.code, exc.detail, form_id=form["id"])) from None
            raise
        with self._lock:
            self._fired[form["id"]] = check.get("fired_rules") or []
        return self.form(form["id"])

    def find_by_id(self, text: str) -> Case:
        form_id = formid.normalize_form_id(text)
        if not formid.is_valid_form_id(form_id):
            raise FindError(Phrase(_("{text} is not a form id: check the characters (the last one is a check)."),
                                   text=text))
        return self._case_around(self._form_or_not_found(form_id), "id", [])

    def find_by_qr(self, payload: str) -> Case:
        notes = []
        try:
            claims = self._verify(payload)
        except qrtoken.TokenRefused as refusal:
            if refusal.reason_code == "deadline_passed" and refusal.claims is not None:
                claims = refusal.claims
            elif refusal.reason_code == "unknown_key" and not self.online:
                form_id = qrtoken.unverified_form_id(payload)
                if form_id is None:
                    raise FindError(Phrase(_("This is not a tax-free form code."))) from None
                notes.append(Phrase(_("The QR signature could not be checked (offline, unknown key).")))
                return self._case_around(self._form_or_not_found(form_id), "qr", notes)
            else:
                raise FindError(QR_REFUSALS.get(refusal.reason_code, refusal.message)) from None
        return self._case_around(self._form_or_not_found(claims.form_id), "qr", notes)

    def find_by_passport(self, text: str) -> Case:
        try:
            passport = mrz.parse_td3(text)
        except mrz.MrzError as exc:
            raise FindError(Phrase(BAD_ZONE, problem=str(exc))) from None
        if passport.issuing_country is None:
            raise FindError(Phrase(_("The passport was issued by {state}, which is not a country forms can "
                                     "name. Scan the form's QR code or type its id."),
                                   state=passport.issuing_state))
        forms = self._online(self.client.lookup, passport.document_number, passport.issuing_country)
        for form in forms:
            self.remember(form)
        open_forms = [f for f in forms if f["status"] in OPEN_STATUSES]
        if not open_forms:
            found = Phrase(_("No open forms for passport {number} ({country})."),
                           number=passport.document_number, country=passport.issuing_country)
            if forms:
                closed = Phrase.join(", ", [Phrase("{id} ({status})", id=f["id"], status=wording.outcome(f["status"]))
                                            for f in forms])
                found = Phrase.join(" ", [found, Phrase(_("Closed: {forms}."), forms=closed)])
            raise FindError(found)
        # Forms waiting for a check first, then the oldest first.
        open_forms.sort(key=lambda f: (f["status"] != "check_required", f["created_at"], f["id"]))
        return Case(open_forms, "passport", passport=passport)

    def _case_around(self, form: dict, found_by: str, notes: list[str]) -> Case:
        """The form found and the traveller's other forms waiting for a check."""
        forms = [form]
        t = form["traveller"]
        try:
            others = self._online(self.client.lookup, t["passport_number"], t["passport_country"])
        except (Offline, ApiError):
            others = []
        for other in others:
            if other["id"] != form["id"] and other["status"] == "check_required":
                self.remember(other)
                forms.append(other)
        cached = None if self.online else (self.cached_form(form["id"]) or (None, None))[1]
        return Case(forms, found_by, notes=notes, cached_at=cached)

    def _form_or_not_found(self, form_id: str) -> dict:
        try:
            return self.form(form_id)
        except ApiError as exc:
            if exc.status == 404:
                raise FindError(Phrase(_("No form {form_id}."), form_id=form_id)) from None
            raise

    def _verify(self, payload: str) -> qrtoken.FormClaims:
        try:
            return qrtoken.verify_form_token(payload, self._keys)
        except qrtoken.TokenRefused as refusal:
            if refusal.reason_code != "unknown_key":
                raise
        # A key published after the last fetch (rotation): fetch and retry once.
        try:
            self._store_keys(self._online(self.client.jwks))
        except (Offline, ApiError):
            pass
        return qrtoken.verify_form_token(payload, self._keys)

    def _load_keys(self) -> qrtoken.KeySet:
        path = self.data_dir / "jwks.json"
        try:
            return qrtoken.KeySet(json.loads(path.read_text()))
        except (OSError, ValueError):
            return qrtoken.KeySet({"keys": []})

    def _store_keys(self, jwks: dict) -> None:
        path = self.data_dir / "jwks.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(jwks))
        tmp.replace(path)
        self._keys = qrtoken.KeySet(jwks)

    # --- deciding --------------------------------------------------------------------------

    def decide(self, draft: Draft) -> DecisionResult:
        """Save the decision on the handheld, then send what is waiting.
        ``sent`` when the API has it, ``saved`` when it waits for the network
        (or a new login), ``refused`` when the API will never take it."""
        problems = draft.problems()
        if problems:
            raise ValueError(problems[0])
        officer = self._username()
        pending = self.decisions.add(officer, draft.form_id, draft.body(), draft.idempotency_key)
        try:
            self.sync()
            signed_out = False
        except NotSignedIn:
            signed_out = True  # saved; sent after the officer logs in again
        with self._lock:
            result = self._results.pop(pending.seq, None)
        if result is not None:
            return result
        return DecisionResult("saved", draft.form_id, draft.outcome, signed_out=signed_out)

    def sync(self) -> SyncReport:
        """Send the signed-in officer's waiting decisions."""
        officer = self._username()

        def sent(item: PendingDecision, answer) -> None:
            self.remember(answer.form)
            with self._lock:
                self._results[item.seq] = DecisionResult("sent", item.form_id, item.body["outcome"],
                                                         form=answer.form)

        report = self.decisions.sync(self.client, officer, on_sent=sent)
        with self._lock:
            for refused in report.refused:
                self._results[refused.seq] = DecisionResult("refused", refused.form_id,
                                                            refused.body["outcome"], refused=refused)
            # Results nobody is waiting for (a periodic sync sent an older
            # decision) must not pile up.
            if len(self._results) > 100:
                self._results.clear()
        if isinstance(report.stopped_by, Offline):
            self.online = False
        elif report.sent or report.refused or report.stopped_by is None:
            self.online = True
        if isinstance(report.stopped_by, NotSignedIn):
            raise report.stopped_by
        return report

    def waiting_decisions(self) -> list[PendingDecision]:
        officer = self.officer
        return self.decisions.pending(officer.username) if officer else []

    def waiting_for(self, form_id: str) -> PendingDecision | None:
        for item in self.waiting_decisions():
            if item.form_id == form_id:
                return item
        return None

    def conflicts(self) -> list[RefusedDecision]:
        """Decisions the API refused, not yet seen by the officer."""
        officer = self.officer
        return self.decisions.refused(officer.username) if officer else []

    def complete_conflict(self, refused: RefusedDecision) -> RefusedDecision:
        """Read the decision recorded instead, if the trail was out of reach."""
        if refused.recorded_instead is not None or not refused.conflict:
            return refused
        event = decision_event(self._online(self.client.events, refused.form_id))
        if event is None:
            return refused
        self.decisions.fill_recorded_instead(refused.seq, event)
        return RefusedDecision(**{**refused.__dict__, "recorded_instead": event})

    def acknowledge(self, refused: RefusedDecision) -> None:
        self.decisions.acknowledge(refused.seq)

    # --- history ----------------------------------------------------------------------------

    def history(self, query: str = "", today: date | None = None) -> list[HistoryEntry]:
        """This officer's decisions today, newest first: those the API has
        recorded, those waiting to be sent, those it refused."""
        today = today or datetime.now(wording.LOCAL_ZONE).date()
        since = datetime.combine(today, time(0), tzinfo=wording.LOCAL_ZONE)
        entries: list[HistoryEntry] = []
        for item in self.waiting_decisions():
            entries.append(HistoryEntry(item.form_id, self._name_of(item.form_id), item.body["outcome"],
                                        datetime.fromisoformat(item.queued_at), "waiting",
                                        Phrase(_("Saved on this handheld, not sent yet")), seq=item.seq))
        officer = self.officer
        for refused in self.decisions.refused(officer.username, include_acknowledged=True) if officer else []:
            at = datetime.fromisoformat(refused.settled_at)
            if at >= since:
                detail = (Phrase(_("Decided by another officer first")) if refused.conflict
                          else wording.problem(refused.code, refused.detail, form_id=refused.form_id))
                entries.append(HistoryEntry(refused.form_id, self._name_of(refused.form_id),
                                            refused.body["outcome"], at, "not_recorded", detail,
                                            seq=refused.seq))
        try:
            checks = self._online(self.client.checks, status="decided", mine=True, decided_since=since)
        except Offline:
            checks = []
        for check in checks:
            entries.append(HistoryEntry(
                check["form_id"], check["traveller_name"] or "", check.get("outcome") or "",
                datetime.fromisoformat(check["decided_at"]) if check.get("decided_at") else None,
                "recorded", check.get("exit_point") or ""))
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        entries.sort(key=lambda e: e.at or epoch, reverse=True)
        return [e for e in entries if e.matches(query)] if query.strip() else entries

    def _name_of(self, form_id: str) -> str:
        cached = self.cached_form(form_id)
        if cached is None:
            return ""
        t = cached[0]["traveller"]
        if t["last_name"] is None:  # removed after the retention period
            return ""
        return f"{t['first_name']} {t['last_name']}"

    # --- plumbing ----------------------------------------------------------------------------

    def _username(self) -> str:
        officer = self.officer
        if officer is None:
            raise NotSignedIn(401, "not_signed_in", Phrase(_("Log in first.")))
        return officer.username

    def _online(self, call, *args, **kwargs):
        """Call the API and note whether it answered."""
        try:
            result = call(*args, **kwargs)
        except Offline:
            self.online = False
            raise
        self.online = True
        return result


