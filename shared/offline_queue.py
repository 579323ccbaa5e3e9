"""Scans a kiosk made while the API was out of reach, kept until it has them.

A SQLite file in the kiosk's data folder. Each pending scan is the exact
request body the kiosk will send (``queued`` and ``scanned_at`` included:
the API dates a queued scan by the device's word, within limits) and its own
Idempotency-Key, written and committed with ``synchronous=FULL`` (fsynced)
before the kiosk tells the traveller "recorded". Draining sends them oldest
first and deletes each one only after the API answered it: a crash between
the answer and the delete resends the same key and body, which the API
replays instead of counting the scan twice. Scans the API refuses for good
(4xx other than a device problem) move to ``failed_scans``, so none blocks
the queue and none is silently lost: the kiosk shows them to its staff and
reports them to the API for the supervisors' dashboard.
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .client import ApiError, DeviceRejected, KioskClient, Offline
from .durable import DurableStore
from .qrtoken import unverified_form_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_scans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('qr', 'passport')),
    body TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS failed_scans (
    seq INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    reported_at TEXT
);
"""


@dataclass(frozen=True)
class PendingScan:
    seq: int
    idempotency_key: str
    kind: str  # "qr" or "passport"
    body: dict
    queued_at: str
    attempts: int


@dataclass(frozen=True)
class DrainReport:
    sent: list  # (PendingScan, verdict or list of verdicts), in the order sent
    failed: list  # (PendingScan, ApiError): moved to failed_scans
    remaining: int
    stopped_by: Exception | None  # Offline or DeviceRejected that ended the run early


def new_idempotency_key() -> str:
    """A key for one scan: unique per scan, not per form (a form scanned at
    two moments is two scans)."""
    return f"scan-{uuid.uuid4()}"


class OfflineQueue(DurableStore):
    """The durable queue of scans waiting for the API.

    Safe to share between threads (the kiosk's scan worker adds, its sync
    worker drains); one drain runs at a time.
    """

    SCHEMA = SCHEMA

    def __init__(self, path: str | Path):
        super().__init__(path)  # "recorded" on screen means recorded on disk
        self._draining = threading.Lock()
        with self._lock:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(failed_scans)")}
            if "reported_at" not in columns:  # a queue file from before refusals were reported
                self._db.execute("ALTER TABLE failed_scans ADD COLUMN reported_at TEXT")

    # --- adding -------------------------------------------------------------

    def add(self, kind: str, body: dict, idempotency_key: str | None = None) -> PendingScan:
        """Store one scan durably; returns once it is committed to disk."""
        key = idempotency_key or new_idempotency_key()
        queued_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        text = json.dumps(body, sort_keys=True)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO pending_scans (idempotency_key, kind, body, queued_at) VALUES (?, ?, ?, ?)",
                    (key, kind, text, queued_at))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return PendingScan(cursor.lastrowid, key, kind, body, queued_at, 0)

    # --- reading ------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM pending_scans").fetchone()[0]

    def backlog(self) -> tuple[int, datetime | None]:
        """How many scans wait, and since when the oldest has (for the heartbeat)."""
        with self._lock:
            count, oldest = self._db.execute("SELECT count(*), min(queued_at) FROM pending_scans").fetchone()
        return count, datetime.fromisoformat(oldest) if oldest else None

    def pending(self) -> list[PendingScan]:
        """Every waiting scan, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, idempotency_key, kind, body, queued_at, attempts FROM pending_scans ORDER BY seq"
            ).fetchall()
        return [PendingScan(seq, key, kind, json.loads(body), at, attempts)
                for seq, key, kind, body, at, attempts in rows]

    def failed(self) -> list[dict]:
        """The scans the API refused, oldest first, for staff and for the
        report to the API: the form number a QR code named and when the
        scan was made, never the passport number or the payload itself."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, idempotency_key, kind, body, status, code, detail, failed_at, reported_at"
                " FROM failed_scans ORDER BY seq"
            ).fetchall()
        refused = []
        for seq, key, kind, body, status, code, detail, failed_at, reported_at in rows:
            sent = json.loads(body)
            refused.append({
                "seq": seq, "idempotency_key": key, "kind": kind, "status": status, "code": code,
                "detail": detail, "failed_at": failed_at, "reported_at": reported_at,
                "scanned_at": sent.get("scanned_at"),
                "form_id": unverified_form_id(sent["qr_payload"]) if kind == "qr" else None,
            })
        return refused

    def unreported(self) -> list[dict]:
        """Refused scans the API has not been told about yet."""
        return [f for f in self.failed() if f["reported_at"] is None]

    def mark_reported(self, seqs: list[int]) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.executemany("UPDATE failed_scans SET reported_at = ? WHERE seq = ?",
                                 [(now, seq) for seq in seqs])

    # --- draining -----------------------------------------------------------

    def drain(self, client: KioskClient,
              on_sent: Callable[[PendingScan, object], None] | None = None) -> DrainReport:
        """Send waiting scans oldest first until the queue is empty or the API
        goes away again. Each is deleted only after the API answered it."""
        sent, failed = [], []
        stopped_by = None
        with self._draining:
            for item in self.pending():
                try:
                    result = client.send_scan(item.kind, self._as_replay(item.body), item.idempotency_key)
                except (Offline, DeviceRejected) as exc:
                    # Keep it (and everything after it) for the next run.
                    self._note_attempt(item, exc)
                    stopped_by = exc
                    break
                except ApiError as exc:
                    self._move_to_failed(item, exc)
                    failed.append((item, exc))
                    continue
                self._delete(item)
                sent.append((item, result))
                if on_sent is not None:
                    on_sent(item, result)
        return DrainReport(sent, failed, len(self), stopped_by)

    @staticmethod
    def _as_replay(body: dict) -> dict:
        """Every scan in the queue is a replay of one made offline; bodies
        queued before replays were marked carry only ``scanned_at``."""
        if "scanned_at" in body and "queued" not in body:
            return {**body, "queued": True}
        return body

    def _delete(self, item: PendingScan) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pending_scans WHERE seq = ?", (item.seq,))

    def _note_attempt(self, item: PendingScan, exc: Exception) -> None:
        with self._lock:
            self._db.execute("UPDATE pending_scans SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                             (str(exc)[:200], item.seq))

    def _move_to_failed(self, item: PendingScan, exc: ApiError) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO failed_scans (seq, idempotency_key, kind, body, queued_at, failed_at, status, code, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (item.seq, item.idempotency_key, item.kind, json.dumps(item.body, sort_keys=True),
                     item.queued_at, now, exc.status, exc.code, exc.detail[:500]))
                self._db.execute("DELETE FROM pending_scans WHERE seq = ?", (item.seq,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
