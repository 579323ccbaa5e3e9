"""Officers' decisions kept on the handheld until the API has them.

Every decision goes through this queue, online or not: it is written (and
fsynced) first, then sent, and deleted only after the API answered. A
decision made without network therefore waits here, survives a restart of
the app or of the device, and is sent when the network is back, with the
same body and Idempotency-Key: a request that did reach the API before the
connection broke is replayed by the API, not recorded twice.

A decision belongs to the officer who made it, and the API records the
officer from the access token; so a pending decision is only ever sent with
its own officer's token (another officer signing in on the same handheld
does not send it as theirs).

Answers the officer must see are kept in ``settled_decisions`` until they
acknowledge them: a 409 ``already_decided`` (another officer, or another
device, decided the form first; the decision that was recorded instead is
fetched from the form's audit trail and kept beside the officer's own), and
any other refusal (4xx). None is silently lost and none blocks the queue.

:class:`shared.offline_queue.OfflineQueue` keeps the kiosk's scans; it
cannot hold decisions (its rows have no form, no officer, and it sends with
the kiosk's ``send_scan``), hence this sibling with the same durability.
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .client import ApiError, Offline
from .durable import DurableStore
from .officer_client import NotSignedIn, OfficerClient

OUTCOME_EVENTS = ("form.validated", "form.partially_validated", "form.rejected")
# A 409 that means "retry": two requests touched the same rows at the same
# moment. Only ``already_decided`` is final.
RETRYABLE_CONFLICTS = ("conflict",)

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    officer TEXT NOT NULL,
    form_id TEXT NOT NULL,
    body TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS settled_decisions (
    seq INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    officer TEXT NOT NULL,
    form_id TEXT NOT NULL,
    body TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    settled_at TEXT NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    recorded_instead TEXT,
    acknowledged_at TEXT
);
"""


@dataclass(frozen=True)
class PendingDecision:
    seq: int
    idempotency_key: str
    officer: str  # username: only this officer's token sends it
    form_id: str
    body: dict  # exactly what is POSTed to /forms/{id}/decision
    queued_at: str
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class RefusedDecision:
    """A decision the API did not record, waiting for the officer to see it."""

    seq: int
    idempotency_key: str
    officer: str
    form_id: str
    body: dict  # the officer's decision
    queued_at: str
    settled_at: str
    status: int
    code: str  # "already_decided", "invalid_decision", "form_not_found", ...
    detail: str
    # The decision the API holds instead (409): the audit trail's event
    # ({type, at, actor, data}); None if the trail could not be read.
    recorded_instead: dict | None

    @property
    def conflict(self) -> bool:
        return self.code == "already_decided"


@dataclass(frozen=True)
class SyncReport:
    sent: list  # (PendingDecision, DecisionAnswer), in the order sent
    refused: list  # RefusedDecision: kept for the officer in settled_decisions
    remaining: int  # this officer's decisions still waiting
    stopped_by: Exception | None  # Offline or NotSignedIn that ended the run early


def new_idempotency_key() -> str:
    """A key for one decision: a retry of the same decision reuses it."""
    return f"decision-{uuid.uuid4()}"


def decision_event(events: list[dict]) -> dict | None:
    """The outcome recorded on a form, from its audit trail (the latest)."""
    for event in reversed(events):
        if event.get("type") in OUTCOME_EVENTS:
            return event
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class DecisionQueue(DurableStore):
    """The durable queue of decisions. Safe to share between threads; one
    sync runs at a time."""

    SCHEMA = SCHEMA

    def __init__(self, path: str | Path):
        super().__init__(path)  # "saved on this device" means fsynced to disk
        self._syncing = threading.Lock()

    # --- adding ----------------------------------------------------------------

    def add(self, officer: str, form_id: str, body: dict,
            idempotency_key: str | None = None) -> PendingDecision:
        """Store one decision durably; returns once it is committed to disk.

        The decision is dated now (``decided_at``, sent with it): the API
        judges it at the moment the officer made it, so one made before the
        export deadline ended is not refused for reaching the API later."""
        key = idempotency_key or new_idempotency_key()
        queued_at = _now()
        body = {**body, "decided_at": body.get("decided_at") or queued_at}
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO pending_decisions (idempotency_key, officer, form_id, body, queued_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, officer, form_id, json.dumps(body, sort_keys=True), queued_at))
        return PendingDecision(cursor.lastrowid, key, officer, form_id, body, queued_at)

    # --- reading -----------------------------------------------------------------

    def pending(self, officer: str | None = None) -> list[PendingDecision]:
        """Waiting decisions, oldest first (one officer's, or everyone's)."""
        query = ("SELECT seq, idempotency_key, officer, form_id, body, queued_at, attempts, last_error"
                 " FROM pending_decisions")
        args: tuple = ()
        if officer is not None:
            query += " WHERE officer = ?"
            args = (officer,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [PendingDecision(seq, key, who, form, json.loads(body), at, attempts, error)
                for seq, key, who, form, body, at, attempts, error in rows]

    def count(self, officer: str | None = None) -> int:
        return len(self.pending(officer))

    def refused(self, officer: str, *, include_acknowledged: bool = False) -> list[RefusedDecision]:
        """Decisions the API did not record, newest first."""
        query = ("SELECT seq, idempotency_key, officer, form_id, body, queued_at, settled_at, status,"
                 " code, detail, recorded_instead FROM settled_decisions WHERE officer = ?")
        if not include_acknowledged:
            query += " AND acknowledged_at IS NULL"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq DESC", (officer,)).fetchall()
        return [RefusedDecision(seq, key, who, form, json.loads(body), queued, settled, status, code,
                                detail, json.loads(instead) if instead else None)
                for seq, key, who, form, body, queued, settled, status, code, detail, instead in rows]

    def acknowledge(self, seq: int) -> None:
        """The officer has seen a refused decision; stop showing it."""
        with self._lock:
            self._db.execute("UPDATE settled_decisions SET acknowledged_at = ? WHERE seq = ?", (_now(), seq))

    def fill_recorded_instead(self, seq: int, event: dict) -> None:
        """Keep the other decision once the audit trail could be read."""
        with self._lock:
            self._db.execute("UPDATE settled_decisions SET recorded_instead = ? WHERE seq = ?",
                             (json.dumps(event, sort_keys=True), seq))

    # --- sending -----------------------------------------------------------------

    def sync(self, client: OfficerClient, officer: str,
             on_sent: Callable[[PendingDecision, object], None] | None = None) -> SyncReport:
        """Send ``officer``'s waiting decisions, oldest first, until none is
        left or the API goes away. Each is deleted only after the API answered."""
        sent: list = []
        refused: list = []
        stopped_by = None
        with self._syncing:
            for item in self.pending(officer):
                try:
                    answer = client.decide(item.form_id, item.body, item.idempotency_key)
                except (Offline, NotSignedIn) as exc:
                    self._note_attempt(item, exc)
                    stopped_by = exc
                    break
                except ApiError as exc:
                    if exc.status == 409 and exc.code in RETRYABLE_CONFLICTS:
                        self._note_attempt(item, exc)
                        stopped_by = exc
                        break
                    refused.append(self._settle(item, exc, self._recorded_instead(client, item, exc)))
                    continue
                self._delete(item)
                sent.append((item, answer))
                if on_sent is not None:
                    on_sent(item, answer)
        return SyncReport(sent, refused, self.count(officer), stopped_by)

    @staticmethod
    def _recorded_instead(client: OfficerClient, item: PendingDecision, exc: ApiError) -> dict | None:
        if exc.code != "already_decided":
            return None
        try:
            return decision_event(client.events(item.form_id))
        except (Offline, ApiError):
            return None  # shown as "another decision" until the trail can be read

    def _delete(self, item: PendingDecision) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pending_decisions WHERE seq = ?", (item.seq,))

    def _note_attempt(self, item: PendingDecision, exc: Exception) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE pending_decisions SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (str(exc)[:200], item.seq))

    def _settle(self, item: PendingDecision, exc: ApiError, instead: dict | None) -> RefusedDecision:
        settled_at = _now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO settled_decisions (seq, idempotency_key, officer, form_id, body, queued_at,"
                    " settled_at, status, code, detail, recorded_instead)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (item.seq, item.idempotency_key, item.officer, item.form_id,
                     json.dumps(item.body, sort_keys=True), item.queued_at, settled_at, exc.status,
                     exc.code, exc.detail[:500], json.dumps(instead, sort_keys=True) if instead else None))
                self._db.execute("DELETE FROM pending_decisions WHERE seq = ?", (item.seq,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return RefusedDecision(item.seq, item.idempotency_key, item.officer, item.form_id, item.body,
                               item.queued_at, settled_at, exc.status, exc.code, exc.detail, instead)
