"""The device fleet: each kiosk, tablet and handheld sends a heartbeat, the
last one is kept, and plain rules turn it into a state a supervisor reads
at a glance: green, amber or red, with the reasons.

The rules (``FleetRules``, from the ``FLEET_RULES`` setting):

- silent for more than ``silent_amber_seconds`` (2 min) is amber, more than
  ``silent_red_seconds`` (10 min) red, but only while the device's exit
  point is open (its opening hours): a kiosk switched off at night is not
  a fault;
- more than ``queue_depth_amber`` items waiting in the offline queue is
  amber; the oldest waiting more than ``queue_oldest_red_seconds`` is red;
  an offline queue that cannot be written (a full disk) is red;
- a camera that does not work is red;
- less free disk than ``free_disk_amber_bytes`` is amber, less than
  ``free_disk_red_bytes`` red;
- a clock more than ``clock_skew_red_seconds`` off the server's is red:
  offline scans carry the device's clock, and the export deadline is
  judged by it.

A device's state is the worst of its reasons; no reason is green.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models import Device, DeviceHeartbeat, ExitPoint

GREEN, AMBER, RED = "green", "amber", "red"
STATES = (GREEN, AMBER, RED)
_RANK = {GREEN: 0, AMBER: 1, RED: 2}


@dataclass(frozen=True)
class FleetRules:
    """The thresholds of the fleet's states (the ``FLEET_RULES`` setting)."""

    silent_amber_seconds: float = 120
    silent_red_seconds: float = 600
    queue_depth_amber: int = 20
    queue_oldest_red_seconds: float = 900
    free_disk_amber_bytes: int = 1024 ** 3
    free_disk_red_bytes: int = 200 * 1024 ** 2
    clock_skew_red_seconds: float = 60

    def __post_init__(self):
        if not 0 < self.silent_amber_seconds <= self.silent_red_seconds:
            raise ValueError("FLEET_RULES: 0 < silent_amber_seconds <= silent_red_seconds")
        if self.free_disk_red_bytes > self.free_disk_amber_bytes:
            raise ValueError("FLEET_RULES: free_disk_red_bytes must not exceed free_disk_amber_bytes")


def rules_from_dict(values: dict) -> FleetRules:
    """``FleetRules`` from the setting's JSON; an unknown key is an error
    (a misspelt threshold must not silently keep its default)."""
    known = {f.name for f in fields(FleetRules)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"FLEET_RULES: unknown setting(s) {', '.join(unknown)}")
    return FleetRules(**values)


# --- opening hours ---------------------------------------------------------------

_HOURS = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class OpeningHours:
    """Local opening and closing times; closing before opening runs past
    midnight ("22:00-06:00")."""

    opens: time
    closes: time

    def is_open(self, local: time) -> bool:
        if self.opens == self.closes:
            return True
        if self.opens < self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes


def _clock(hours: str, minutes: str) -> time:
    if hours == "24":
        if minutes != "00":
            raise ValueError("24:xx is not a time")
        return time.max  # "24:00": the end of the day
    return time(int(hours), int(minutes))


def parse_opening_hours(text: str | None) -> OpeningHours | None:
    """``"05:30-23:00"`` as OpeningHours; None or empty means around the clock."""
    if not text:
        return None
    match = _HOURS.match(text.strip())
    if match is None:
        raise ValueError(f"opening hours must look like 05:30-23:00, not {text!r}")
    opens, closes = _clock(*match.group(1, 2)), _clock(*match.group(3, 4))
    if opens == time.max:
        raise ValueError("an exit point cannot open at 24:00")
    return OpeningHours(opens, closes)


def is_open(opening_hours: str | None, now: datetime, zone: ZoneInfo) -> bool:
    """Whether an exit point with these opening hours is open at ``now``."""
    hours = parse_opening_hours(opening_hours)
    return hours is None or hours.is_open(now.astimezone(zone).time())


# --- the state of one device ----------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """Why a device is not green: a code, how bad, and the figure behind it
    (seconds, items or bytes)."""

    code: str
    state: str
    value: float | None = None

    @property
    def figure(self) -> str:
        """The value as people read it: a duration, a size or a count."""
        if self.value is None:
            return ""
        if self.code in ("never_seen", "silent", "queue_old", "clock_skew"):
            return duration_text(abs(self.value))
        if self.code == "disk_low":
            return bytes_text(self.value)
        return str(int(self.value))

    @property
    def message(self) -> str:
        """In English, for the API and the logs (the pages translate codes)."""
        return MESSAGES[self.code].format(value=self.figure)


MESSAGES = {
    "never_seen": "No heartbeat since the device was registered ({value}).",
    "silent": "No heartbeat for {value}.",
    "queue_depth": "{value} item(s) waiting in the offline queue.",
    "queue_old": "The oldest item in the offline queue has waited {value}.",
    "queue_unwritable": "The offline queue cannot be written (disk full?): travellers are sent to the desk.",
    "camera": "The camera is not working.",
    "disk_low": "Only {value} of disk free.",
    "clock_skew": "The device's clock is {value} off.",
}


def duration_text(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``20 days``."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def bytes_text(count: float) -> str:
    """``850 MB``, ``1.2 GB`` (decimal units, as disks are sold)."""
    if count >= 10 ** 9:
        return f"{count / 10 ** 9:.1f} GB"
    return f"{count / 10 ** 6:.0f} MB"


@dataclass(frozen=True)
class Health:
    """What a device's last heartbeat said, as the rules need it."""

    received_at: datetime
    queue_depth: int
    oldest_queued_at: datetime | None
    queue_writable: bool
    camera_ok: bool | None
    free_disk_bytes: int
    clock_skew_seconds: float


def assess(health: Health | None, now: datetime, *, registered_at: datetime, open_now: bool,
           rules: FleetRules) -> tuple[str, list[Reason]]:
    """The state of a device and why, from its last heartbeat (None if it
    never sent one) at ``now``. ``open_now``: its exit point is open."""
    reasons: list[Reason] = []
    last_contact = health.received_at if health is not None else registered_at
    silent = (now - last_contact).total_seconds()
    if open_now and silent > rules.silent_amber_seconds:
        state = RED if silent > rules.silent_red_seconds else AMBER
        reasons.append(Reason("silent" if health is not None else "never_seen", state, silent))
    if health is not None:
        if not health.queue_writable:
            reasons.append(Reason("queue_unwritable", RED))
        if health.oldest_queued_at is not None:
            waited = (now - health.oldest_queued_at).total_seconds()
            if waited > rules.queue_oldest_red_seconds:
                reasons.append(Reason("queue_old", RED, waited))
        if health.queue_depth > rules.queue_depth_amber:
            reasons.append(Reason("queue_depth", AMBER, health.queue_depth))
        if health.camera_ok is False:
            reasons.append(Reason("camera", RED))
        if health.free_disk_bytes < rules.free_disk_amber_bytes:
            state = RED if health.free_disk_bytes < rules.free_disk_red_bytes else AMBER
            reasons.append(Reason("disk_low", state, health.free_disk_bytes))
        if abs(health.clock_skew_seconds) > rules.clock_skew_red_seconds:
            reasons.append(Reason("clock_skew", RED, health.clock_skew_seconds))
    reasons.sort(key=lambda r: -_RANK[r.state])
    return (reasons[0].state if reasons else GREEN), reasons


# --- heartbeats in the database --------------------------------------------------------

def record_heartbeat(session: Session, device_id: str, report: dict, now: datetime) -> dict:
    """Keep ``report`` (a heartbeat's fields) as the device's last
    heartbeat, received at ``now``; returns the stored values. One
    statement, an upsert: two heartbeats racing each other both land and
    the later one stays."""
    values = {
        "device_id": device_id,
        "received_at": now,
        "app_version": report["app_version"],
        "online_since": report.get("online_since"),
        "queue_depth": report["queue_depth"],
        "oldest_queued_at": report.get("oldest_queued_at"),
        "queue_writable": report.get("queue_writable", True),
        "camera_ok": report.get("camera_ok"),
        "free_disk_bytes": report["free_disk_bytes"],
        "device_clock": report["device_clock"],
        "clock_skew_seconds": round((report["device_clock"] - now).total_seconds(), 3),
    }
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DeviceHeartbeat)
    statement = insert.values(**values).on_conflict_do_update(
        index_elements=["device_id"], set_={k: v for k, v in values.items() if k != "device_id"})
    session.execute(statement)
    return values


@dataclass(frozen=True)
class DeviceState:
    """One device as the fleet page shows it."""

    id: str
    name: str
    kind: str
    exit_point: str
    exit_point_open: bool
    registered_at: datetime
    last_seen: datetime | None
    heartbeat: dict | None
    state: str
    reasons: list[Reason]


_H = DeviceHeartbeat.__table__
_FLEET = (
    select(Device.id, Device.name, Device.kind, Device.created_at, ExitPoint.code,
           ExitPoint.opening_hours, *_H.c)
    .join(ExitPoint, Device.exit_point_id == ExitPoint.id)
    .outerjoin(_H, _H.c.device_id == Device.id)
    .where(Device.revoked_at.is_(None))
    .order_by(ExitPoint.code, Device.name, Device.id)
)


def fleet(session: Session, now: datetime, rules: FleetRules, zone: ZoneInfo) -> list[DeviceState]:
    """Every device that is not revoked, with its state, by exit point and
    name; one statement."""
    states = []
    for row in session.execute(_FLEET).mappings():
        heartbeat = {c.name: row[c.name] for c in _H.c if c.name != "device_id"} \
            if row["received_at"] is not None else None
        health = Health(
            received_at=row["received_at"], queue_depth=row["queue_depth"],
            oldest_queued_at=row["oldest_queued_at"], queue_writable=row["queue_writable"],
            camera_ok=row["camera_ok"], free_disk_bytes=row["free_disk_bytes"],
            clock_skew_seconds=row["clock_skew_seconds"],
        ) if heartbeat is not None else None
        open_now = is_open(row["opening_hours"], now, zone)
        state, reasons = assess(health, now, registered_at=row["created_at"], open_now=open_now, rules=rules)
        states.append(DeviceState(
            id=row["id"], name=row["name"], kind=row["kind"], exit_point=row["code"],
            exit_point_open=open_now, registered_at=row["created_at"],
            last_seen=row["received_at"], heartbeat=heartbeat, state=state, reasons=reasons,
        ))
    return states


def silence(state: DeviceState, now: datetime) -> timedelta:
    """How long the device has been silent (since registration if it never spoke)."""
    return now - (state.last_seen or state.registered_at)
