"""A small SQLite file on the device that survives crashes and restarts:
the common ground of the kiosk's scan queue and the officer's decision queue."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class DurableStore:
    """One SQLite connection, shared between threads under a lock, in which
    every commit is on disk before it returns. Subclasses give ``SCHEMA``."""

    SCHEMA = ""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                   timeout=10)
        self._lock = threading.Lock()
        with self._lock:
            # WAL with synchronous=FULL: every commit is fsynced before it
            # returns, so what the screen calls saved is saved on disk.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(self.SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
