"""A device's heartbeat: every so often a kiosk, tablet or handheld tells
the API how it is (``POST /api/v1/devices/me/heartbeat``): its app version,
since when it has been online, its offline queue, its camera, its free
disk and its clock. The API keeps the last one and its fleet page turns it
into green, amber or red.

``HeartbeatLoop`` sends them on a thread of its own, never the UI's. A
heartbeat that cannot be sent (no network, the API down) is not retried:
the next one goes at its time, and meanwhile the fleet page shows the
device falling silent, which is the point.
"""
from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

from .client import ApiError, Offline, iso_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceHealth:
    """What a device reports about itself, gathered by the app."""

    queue_depth: int
    oldest_queued_at: datetime | None
    queue_writable: bool
    camera_ok: bool | None  # None: no camera (a handheld scanner only)
    free_disk_bytes: int


def app_version() -> str:
    """The installed version of the apps' package."""
    try:
        return metadata.version("taxfree-export")
    except metadata.PackageNotFoundError:
        return "unknown"


def free_disk_bytes(path: str | Path) -> int:
    """Free space on the disk holding ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def heartbeat_body(health: DeviceHealth, version: str, online_since: datetime, device_clock: datetime) -> dict:
    """The request body of one heartbeat."""
    return {
        "app_version": version,
        "online_since": iso_utc(online_since),
        "queue_depth": health.queue_depth,
        "oldest_queued_at": iso_utc(health.oldest_queued_at) if health.oldest_queued_at else None,
        "queue_writable": health.queue_writable,
        "camera_ok": health.camera_ok,
        "device_clock": iso_utc(device_clock),
        "free_disk_bytes": health.free_disk_bytes,
    }


def _device_clock() -> datetime:
    # The device's own clock, uncorrected: the API compares it with its own.
    return datetime.now(timezone.utc)


class HeartbeatLoop:
    """Sends ``health()`` through ``send(body)`` every ``interval`` seconds
    on a daemon thread, the first one at once."""

    def __init__(self, send: Callable[[dict], dict], health: Callable[[], DeviceHealth], interval: float,
                 clock: Callable[[], datetime] = _device_clock, version: str | None = None):
        if interval <= 0:
            raise ValueError("the heartbeat interval must be positive")
        self.version = (version or app_version())[:40]
        self._send = send
        self._health = health
        self.interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Since when the API has been answering without a break.
        self.online_since: datetime | None = None
        self.sent = 0
        self.failed = 0

    def beat(self) -> bool:
        """Send one heartbeat now; False if it could not be sent."""
        now = self._clock()
        since = self.online_since or now
        try:
            body = heartbeat_body(self._health(), self.version, since, now)
            self._send(body)
        except (Offline, ApiError) as exc:
            self.online_since = None
            self.failed += 1
            log.info("heartbeat not sent: %s", exc)
            return False
        self.online_since = since
        self.sent += 1
        return True

    def start(self) -> "HeartbeatLoop":
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:  # a bug in gathering health must not end the heartbeats
                log.exception("heartbeat failed")
            self._stop.wait(self.interval)
