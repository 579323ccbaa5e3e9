"""What the app keeps on the phone, durably: the passport, the forms, the
exit points and the trip, in one SQLite file in the app's data folder.

Each change is committed and fsynced (``shared.durable``) before the screen
shows it, so the app can be sent to the background, killed by the system
and started again without losing anything (the top complaint about
Australia's TRS app). "Forget me" closes the file and deletes the folder's
every file: SQLite keeps deleted rows in free pages, so nothing short of
deleting the file leaves no personal data behind.
"""
from __future__ import annotations

import json
import shutil
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from shared.durable import DurableStore
from shared.traveller_client import Credentials, ExitPoint, Form

FILE = "traveller.sqlite3"


@dataclass(frozen=True)
class Passport:
    """The passport as the traveller gave it (typed or read)."""

    number: str
    country: str  # ISO 3166-1 alpha-2 of the issuing state
    date_of_birth: date
    expiry: date | None = None
    name: str = ""  # shown back to the traveller only

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.number, self.country, self.date_of_birth)

    def to_json(self) -> dict:
        data = asdict(self)
        data["date_of_birth"] = self.date_of_birth.isoformat()
        data["expiry"] = self.expiry.isoformat() if self.expiry else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Passport":
        return cls(number=data["number"], country=data["country"],
                   date_of_birth=date.fromisoformat(data["date_of_birth"]),
                   expiry=date.fromisoformat(data["expiry"]) if data.get("expiry") else None,
                   name=data.get("name", ""))


class _Store(DurableStore):
    SCHEMA = "CREATE TABLE IF NOT EXISTS kept (name TEXT PRIMARY KEY, value TEXT NOT NULL);"

    def put(self, name: str, value) -> None:
        with self._lock:
            self._db.execute("INSERT INTO kept (name, value) VALUES (?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, json.dumps(value)))

    def get(self, name: str, default=None):
        with self._lock:
            row = self._db.execute("SELECT value FROM kept WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default


class Wallet:
    """The app's durable state. Thread-safe (one SQLite connection under a lock)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._store = _Store(self.folder / FILE)

    @property
    def install_id(self) -> str:
        """This install's random id (the API counts sessions per install)."""
        value = self._store.get("install_id")
        if value is None:
            value = str(uuid.uuid4())
            self._store.put("install_id", value)
        return value

    # --- passport -----------------------------------------------------------

    @property
    def passport(self) -> Passport | None:
        data = self._store.get("passport")
        return Passport.from_json(data) if data else None

    def keep_passport(self, passport: Passport) -> None:
        self._store.put("passport", passport.to_json())

    # --- forms --------------------------------------------------------------

    @property
    def forms(self) -> list[Form]:
        return [Form.from_json(f) for f in self._store.get("forms", [])]

    def keep_forms(self, forms: list[Form]) -> None:
        """The API's list, plus forms added by QR code it did not list (yet)."""
        self._store.put("forms", [f.to_json() for f in forms])

    def keep_form(self, form: Form) -> None:
        forms = [f for f in self.forms if f.id != form.id] + [form]
        self.keep_forms(forms)

    # --- exit points, trip, last validation -----------------------------------

    @property
    def exit_points(self) -> list[ExitPoint]:
        return [ExitPoint.from_json(e) for e in self._store.get("exit_points", [])]

    def keep_exit_points(self, points: list[ExitPoint]) -> None:
        self._store.put("exit_points", [p.to_json() for p in points])

    @property
    def trip(self) -> dict | None:
        return self._store.get("trip")

    def keep_trip(self, trip: dict | None) -> None:
        self._store.put("trip", trip)

    @property
    def last_result(self) -> dict | None:
        return self._store.get("last_result")

    def keep_last_result(self, result: dict | None) -> None:
        self._store.put("last_result", result)

    @property
    def language(self) -> str | None:
        return self._store.get("language")

    def keep_language(self, code: str) -> None:
        self._store.put("language", code)

    # --- forget me ------------------------------------------------------------

    def forget(self) -> None:
        """Delete everything: the file and every other file in the folder."""
        with self._lock:
            self._store.close()
            for path in self.folder.iterdir():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            self._store = _Store(self.folder / FILE)

    def close(self) -> None:
        self._store.close()
