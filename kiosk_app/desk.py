"""What the kiosk does with one scan, without any user interface.

Scanned text (a form's QR code, a passport zone, a boarding pass) becomes
one or more :class:`Outcome` objects the screens show. The rules:

- A form is judged by the API when it can be reached. When it cannot, the
  QR signature is checked against the cached keys: a forged, altered or
  expired form is refused on the spot, a genuine one is written to the
  durable offline queue (marked queued, dated, under the Idempotency-Key
  that the failed attempt used, so a request that did reach the API is not
  counted twice) and the traveller is told it is recorded. A code signed
  with a key the kiosk does not hold (or with no keys cached at all) is
  queued for the record, but the kiosk cannot vouch for it: the traveller
  is sent to the desk. An offline passport read, which checks nothing, does
  the same.
- While scans wait in the queue, new ones join it: the API hears a device's
  scans in the order they were made, and refuses a queued scan dated before
  the device's last live one.
- Each form counts once per traveller session; scanning it again is
  answered politely, without a second request.
- A boarding pass whose flight from here lands inside the EU means this is
  not the traveller's last EU exit: they are told where to validate instead.

Nothing here imports Kivy: the kiosk app calls :meth:`ExitDesk.handle` on a
worker thread and shows what comes back. Tests call it directly.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


from shared import bcbp, mrz, pairing, qrtoken
from shared.client import ApiError, DeviceRejected, KioskClient, Offline, Verdict
from shared.offline_queue import DrainReport, OfflineQueue, new_idempotency_key

log = logging.getLogger(__name__)

# Outcome kinds, one screen treatment each.
VALIDATED = "validated"
CHECK_REQUIRED = "check_required"
REFUSED = "refused"
RECORDED = "recorded"  # offline: genuine form queued for the API
UNVERIFIED = "unverified"  # offline and not verifiable here: queued, but go to the desk
DUPLICATE = "duplicate"  # already scanned this session
NOT_LAST_EXIT = "not_last_exit"  # boarding pass: flight stays inside the EU
LAST_EXIT_OK = "last_exit_ok"  # boarding pass: right place
NO_OPEN_FORMS = "no_open_forms"  # passport: nothing to validate
UNREADABLE = "unreadable"  # a code or zone that could not be read as anything useful
OUT_OF_SERVICE = "out_of_service"  # the device token was refused, or offline with a queue that cannot be written
PAIRED = "paired"  # staff provisioned this kiosk with a pairing code
PAIRING_REFUSED = "pairing_refused"  # used, expired or unknown pairing code, or already paired

# it as a field of its own, it is read from there.


@dataclass(frozen=True)
class Outcome:
    """One thing to tell the traveller."""

    kind: str
    form_id: str | None = None
    reason_code: str | None = None  # refusals and partial validations
    export_deadline: date | None = None
    desk_location: str | None = None
    payer: str | None = None
    destination: str | None = None  # boarding pass: where the flight goes
    validate_at: str | None = None  # boarding pass: the last EU airport, if on the pass
    passport_expired: bool = False
    message: str = ""  # the API's English message, for logs and staff

    @property
    def counts_as_form(self) -> bool:
        """True for outcomes about a form (listed in the session summary)."""
        return self.kind in (VALIDATED, CHECK_REQUIRED, REFUSED, RECORDED, UNVERIFIED)


@dataclass
class TravellerSession:
    """What one traveller scanned, from the first scan until "done" or idle."""

    outcomes: list[Outcome] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def forms(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.counts_as_form]

    def clear(self) -> None:
        """Forget everything about this traveller (privacy: nothing stays)."""
        self.outcomes.clear()
        self.seen.clear()


def classify(text: str) -> str:
    """"pairing", "passport", "boarding_pass" or "qr" (anything else is sent
    as a form code)."""
    if text.startswith(pairing.SCHEME + ":"):
        return "pairing"
    if mrz.looks_like_mrz(text):
        return "passport"
    if bcbp.looks_like_bcbp(text):
        return "boarding_pass"
    return "qr"


def outcome_of(verdict: Verdict) -> Outcome:
    return Outcome(
        kind=verdict.verdict,
        form_id=verdict.form_id,
        reason_code=verdict.reason_code,
        export_deadline=verdict.export_deadline,
        desk_location=verdict.desk_location,
        payer=verdict.payer,
        message=verdict.message,
    )


class KeyCache:
    """The JWKS, kept in the kiosk's data folder for offline verification."""

    def __init__(self, path: Path):
        self.path = path
        self._keys = qrtoken.KeySet({"keys": []})
        if path.exists():
            try:
                self._keys = qrtoken.KeySet(json.loads(path.read_text()))
            except (ValueError, OSError):
                log.warning("ignoring an unreadable key cache at %s", path)

    @property
    def keys(self) -> qrtoken.KeySet:
        return self._keys

    def store(self, jwks: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(jwks))
        tmp.replace(self.path)  # atomic: a crash leaves the old or the new file
        self._keys = qrtoken.KeySet(jwks)


class DeviceCredentials:
    """Where pairing keeps the API address and the device token: a file in
    the kiosk's data folder readable by its user only."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def store(self, api_url: str, token: str, exit_point: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps({"api_url": api_url, "device_token": token, "exit_point": exit_point}))
        tmp.replace(self.path)


class ExitDesk:
    """Judges scans for one kiosk: online through the API, offline with the
    cached keys and the durable queue."""

    def __init__(self, client: KioskClient, queue: OfflineQueue, key_cache: KeyCache,
                 exit_point: str | None = None, desk_location: str | None = None,
                 sync_client: KioskClient | None = None,
                 credentials: DeviceCredentials | None = None):
        self.client = client
        # The sync worker has its own client (and HTTP connection pool): a
        # requests.Session is not meant to be shared between threads.
        self.sync_client = sync_client or client
        self.credentials = credentials
        self.queue = queue
        self.key_cache = key_cache
        self.exit_point = exit_point
        self.desk_location = desk_location
        self.online = True
        # False once the offline queue could not be written (a full disk):
        # offline, travellers are then sent to the desk, and the heartbeat
        # says so. True again after the next successful write.
        self.queue_writable = True
        self._lock = threading.Lock()  # one scan at a time (one traveller at a kiosk)

    # --- entry point ---------------------------------------------------------

    def handle(self, text: str, session: TravellerSession) -> list[Outcome]:
        """Judge one scanned or typed text; the outcomes are also added to
        ``session``. Blocks on the network: call it off the UI thread."""
        text = (text or "").strip("\r\n\t ")
        if not text:
            return []
        kind = classify(text)
        with self._lock:
            if kind == "pairing":
                return [self._pair(text)]
            if kind == "passport":
                outcomes = self._passport(text, session)
            elif kind == "boarding_pass":
                outcomes = [self._boarding_pass(text)]
            else:
                outcomes = [self._form(text, session)]
        session.outcomes.extend(o for o in outcomes if o.kind != DUPLICATE)
        return outcomes

    # --- forms ---------------------------------------------------------------

    def _form(self, payload: str, session: TravellerSession) -> Outcome:
        identity = qrtoken.unverified_form_id(payload) or payload
        if identity in session.seen:
            return Outcome(DUPLICATE, form_id=qrtoken.unverified_form_id(payload))
        body = {"qr_payload": payload}
        queued = {**body, "queued": True, "scanned_at": self._now()}
        key = new_idempotency_key()
        outcome = None
        if self._live():
            try:
                outcome = outcome_of(self.client.send_scan("qr", body, key))
            except Offline:
                # Same body and key go to the queue: if this request did reach
                # the API after all, the resend is answered from its record.
                self.online = False
            except DeviceRejected:
                return Outcome(OUT_OF_SERVICE)
            except ApiError as exc:
                log.warning("the API refused a scan: %s", exc.code)
                return Outcome(UNREADABLE, reason_code=exc.code)
        if outcome is None:
            # Known to be offline: no waiting on timeouts for each traveller;
            # the sync worker finds out when the API is back. The same key
            # goes to the queue: if the live attempt did reach the API after
            # all, the resend is answered from its record.
            outcome = self._offline_form(payload, queued, key)
        if outcome.kind != OUT_OF_SERVICE:  # not recorded: scanning it again must try again
            session.seen.add(identity)
        return outcome

    def _offline_form(self, payload: str, body: dict, key: str) -> Outcome:
        try:
            claims = qrtoken.verify_form_token(payload, self.key_cache.keys)
        except qrtoken.TokenRefused as refusal:
            if refusal.reason_code != "unknown_key":
                # Forged, altered, not a form, or too late: the API would say
                # the same, so the traveller hears it now.
                fid = refusal.claims.form_id if refusal.claims else None
                deadline = refusal.claims.expires_at.date() if refusal.claims else None
                return Outcome(REFUSED, form_id=fid, reason_code=refusal.reason_code,
                               export_deadline=deadline)
            # A key the cache does not hold (rotated while offline, no keys
            # cached yet, or a forger's own): nothing here can tell a genuine
            # form from a forged one. Kept for the record; an officer decides.
            if not self._queue("qr", body, key):
                return Outcome(OUT_OF_SERVICE, form_id=qrtoken.unverified_form_id(payload),
                               reason_code="queue_unwritable", desk_location=self.desk_location)
            return Outcome(UNVERIFIED, form_id=qrtoken.unverified_form_id(payload),
                           desk_location=self.desk_location)
        if not self._queue("qr", body, key):  # committed to disk before "recorded"
            return Outcome(OUT_OF_SERVICE, form_id=claims.form_id, reason_code="queue_unwritable",
                           desk_location=self.desk_location)
        return Outcome(RECORDED, form_id=claims.form_id, desk_location=self.desk_location)

    def _live(self) -> bool:
        """Whether to ask the API now: online, and nothing older waiting in
        the queue (called under the scan lock, so no scan joins the queue
        between this look and the request)."""
        return self.online and len(self.queue) == 0

    def _queue(self, kind: str, body: dict, key: str) -> bool:
        """Write a scan to the offline queue; False if the disk refuses
        (full, read-only, failing): the traveller must not hear "recorded"
        for a scan that was not."""
        try:
            self.queue.add(kind, body, key)
        except (sqlite3.Error, OSError) as exc:
            log.error("the offline queue cannot be written: %s", exc)
            self.queue_writable = False
            return False
        self.queue_writable = True
        return True

    # --- passports -----------------------------------------------------------

    def _passport(self, text: str, session: TravellerSession) -> list[Outcome]:
        try:
            passport = mrz.parse_td3(text)
        except mrz.MrzError as exc:
            return [Outcome(UNREADABLE, reason_code=f"passport_{exc.field}")]
        expired = passport.expired
        if passport.issuing_country is None:
            # A specimen or an organisation's passport: no forms can name it.
            return [Outcome(NO_OPEN_FORMS, passport_expired=expired)]
        body = {"passport_number": passport.document_number,
                "passport_country": passport.issuing_country}
        key = new_idempotency_key()
        verdicts = None
        if self._live():
            try:
                verdicts = self.client.send_scan("passport", body, key)
            except Offline:
                self.online = False
            except DeviceRejected:
                return [Outcome(OUT_OF_SERVICE)]
            except ApiError as exc:
                log.warning("the API refused a passport look-up: %s", exc.code)
                return [Outcome(UNREADABLE, reason_code=exc.code)]
        if verdicts is None:
            # Offline a passport shows nothing the kiosk can check: kept for
            # the record, and the traveller goes to the desk.
            if not self._queue("passport", {**body, "queued": True, "scanned_at": self._now()}, key):
                return [Outcome(OUT_OF_SERVICE, reason_code="queue_unwritable", desk_location=self.desk_location)]
            return [Outcome(UNVERIFIED, passport_expired=expired, desk_location=self.desk_location)]
        outcomes = []
        for verdict in verdicts:
            if verdict.form_id in session.seen:
                continue
            session.seen.add(verdict.form_id)
            outcome = outcome_of(verdict)
            if expired:
                outcome = Outcome(**{**outcome.__dict__, "passport_expired": True})
            outcomes.append(outcome)
        if not outcomes:
            return [Outcome(NO_OPEN_FORMS, passport_expired=expired)]
        return outcomes

    # --- boarding passes -----------------------------------------------------

    def _boarding_pass(self, text: str) -> Outcome:
        try:
            boarding = bcbp.parse(text)
            leg = boarding.leg_from(self.exit_point or boarding.legs[0].origin)
            leaves = bcbp.is_last_eu_exit(leg.destination)
        except (bcbp.BcbpError, bcbp.UnknownAirport) as exc:
            return Outcome(UNREADABLE, reason_code=f"boarding_pass_{getattr(exc, 'field', 'airport')}")
        destination = bcbp.destination_name(leg.destination)
        if leaves:
            return Outcome(LAST_EXIT_OK, destination=destination)
        last = boarding.last_eu_exit()
        return Outcome(NOT_LAST_EXIT, destination=destination,
                       validate_at=bcbp.destination_name(last) if last else None)

    # --- pairing -------------------------------------------------------------

    @property
    def paired(self) -> bool:
        return bool(self.client.device_token)

    def _pair(self, text: str) -> Outcome:
        """Provision this kiosk from a pairing QR code. Only an unpaired
        kiosk accepts one: otherwise anyone could hold up a code that
        points the kiosk at another server."""
        code = pairing.parse_pairing(text)
        if code is None or self.paired or self.credentials is None:
            return Outcome(PAIRING_REFUSED)
        client = KioskClient(code.api_url, None)
        try:
            device = client.pair(code.code)
        except (ApiError, Offline) as exc:
            log.warning("pairing failed: %s", exc)
            return Outcome(PAIRING_REFUSED, reason_code=getattr(exc, "code", "offline"))
        self.credentials.store(code.api_url, device.token, device.exit_point)
        for c in {id(self.client): self.client, id(self.sync_client): self.sync_client}.values():
            c.base_url, c.device_token = code.api_url, device.token
        self.exit_point = device.exit_point
        self.online = True
        return Outcome(PAIRED, destination=device.exit_point)

    # --- background work -----------------------------------------------------

    def sync(self):
        """Send queued scans (oldest first) and refresh the keys; returns the
        drain report. Called by the kiosk's sync worker, never the UI."""
        if not self.paired:
            self.online = self.refresh_keys()
            return DrainReport([], [], len(self.queue), None)
        report = self.queue.drain(self.sync_client)
        if report.stopped_by is None:
            self._report_refused()
            # Keys first: a kiosk that comes back online is ready for the
            # next outage before it says it is online. (Scans that joined
            # the queue meanwhile keep the kiosk off the live path until the
            # next drain sends them: see _live.)
            self.online = self.refresh_keys()
        elif isinstance(report.stopped_by, Offline):
            self.online = False
        return report

    def _report_refused(self) -> None:
        """Tell the API which queued scans it refused, so a supervisor sees
        them too; told again at the next sync if this fails."""
        refused = self.queue.unreported()[:100]
        if not refused:
            return
        try:
            self.sync_client.report_refused(refused)
        except (Offline, ApiError) as exc:
            log.warning("refused scans not reported yet: %s", exc)
            return
        self.queue.mark_reported([item["seq"] for item in refused])

    def refresh_keys(self) -> bool:
        """Fetch and cache the published keys; False if the API is out of reach."""
        try:
            self.key_cache.store(self.sync_client.jwks())
        except (Offline, ApiError):
            return False
        return True

    def _now(self) -> str:
        from shared.client import iso_utc

        return iso_utc(self.client.now())
