"""The audit trail: every status change, scan and decision appends an event.

Events are only ever inserted, in the same transaction as the change they
describe, so the trail and the forms never disagree.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..models import Event, utcnow


def record(
    session: Session,
    form_id: str | None,
    type: str,
    actor: str,
    *,
    exit_point: str | None = None,
    at: datetime | None = None,
    **data,
) -> Event:
    event = Event(
        form_id=form_id,
        type=type,
        actor=actor,
        exit_point=exit_point,
        data=data,
        at=at or utcnow(),
    )
    session.add(event)
    return event
