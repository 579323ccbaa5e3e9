"""The audit trail: every status change, scan and decision appends an event.

Events are only ever inserted, in the same transaction as the change they
describe, so the trail and the forms never disagree. The same goes for what
follows from an event: the webhook outbox rows that tell retailers and
intermediaries, and the form's place in the change feed.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..models import Event, utcnow
from . import changes, webhooks

# Events that leave the form itself as it was (a re-scan repeats the verdict
# already given): they do not move the form in the change feed.
UNCHANGING = frozenset({"form.scanned"})


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
    if form_id is not None:
        if type not in UNCHANGING:
            changes.note(session, form_id)
        if type in webhooks.EVENT_TYPES:
            webhooks.enqueue(session, event)
    return event
