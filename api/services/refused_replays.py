"""Scans a device queued offline and the API then refused, as the device
reports them: kept so that a supervisor sees them (dashboard), not only the
kiosk's staff screen. A refused replay is a traveller whose export may not
be on record: somebody has to look at it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..auth import Principal
from ..models import Device, ExitPoint, RefusedReplay


def record(session: Session, device: Principal, reports: list[dict], now: datetime) -> int:
    """Store what ``device`` reports; a report sent again (same device and
    Idempotency-Key) is kept once. Returns how many were new."""
    if not reports:
        return 0
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    rows = [{**report, "device_id": device.id, "exit_point_id": device.exit_point_id, "reported_at": now}
            for report in reports]
    statement = insert(RefusedReplay).values(rows).on_conflict_do_nothing(
        index_elements=[RefusedReplay.device_id, RefusedReplay.idempotency_key]).returning(RefusedReplay.id)
    return len(session.execute(statement).all())


@dataclass(frozen=True)
class Refusal:
    exit_point: str
    device: str
    kind: str
    form_id: str | None
    scanned_at: datetime | None
    refused_at: datetime
    code: str
    detail: str


def since(session: Session, start: datetime, end: datetime, exit_point: str | None = None,
          limit: int = 200) -> list[Refusal]:
    """The refusals of [start, end), newest first, at one exit point or all."""
    query = (
        select(ExitPoint.code, Device.name, RefusedReplay.kind, RefusedReplay.form_id, RefusedReplay.scanned_at,
               RefusedReplay.refused_at, RefusedReplay.code, RefusedReplay.detail)
        .join(ExitPoint, ExitPoint.id == RefusedReplay.exit_point_id)
        .join(Device, Device.id == RefusedReplay.device_id)
        .where(RefusedReplay.refused_at >= start, RefusedReplay.refused_at < end)
        .order_by(RefusedReplay.refused_at.desc(), RefusedReplay.id.desc())
        .limit(limit)
    )
    if exit_point:
        query = query.where(ExitPoint.code == exit_point)
    return [Refusal(*row) for row in session.execute(query)]
