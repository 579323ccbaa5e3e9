"""Removing travellers' personal data a while after a form's final status,
keeping the anonymous figures.

Removed from the form: first and last name, passport number and its keyed
hash (``passport_key``: it finds the traveller's other forms, so it is
personal data too), date of birth, e-mail; and the officer's free-text note
on the form's check, which may name the traveller. The form is marked with
``personal_data_removed_at``, and the API and the pages say "removed".

Kept: amounts, dates, status, exit point, lines (descriptions and serial
numbers describe goods, not people), scans, checks' outcomes and the risk
rules that fired, and the audit trail. The passport country, nationality
and country of residence stay too: on their own they do not single out a
traveller, and the figures by country (where travellers come from, how
often EU passport holders are sent to the desk) need them.

When a form's status is final (what ``updated_at`` dates, as every status
change sets it):

- rejected, cancelled, refunded: nothing follows;
- validated and partially validated: the refund may still be paid, but
  recording it (POST /forms/{id}/refund) needs none of the traveller's
  data, and refunds are paid within weeks or months, well inside a
  retention period counted from validation;
- expired: an offline kiosk may still send a scan made before the deadline
  for up to 14 days (``scans.MAX_OFFLINE``), which validates the form; its
  personal data stays at least that long whatever the period.

Copies of personal data elsewhere go too: the replayable responses of
requests sent with an Idempotency-Key (a stored POST /forms response is the
whole form; encrypted, but the key is not to outlive the period) older than
the period, which covers every request about a form whose final status is
older still; browser sessions that ended;
and rate-limit counters of windows long over (their keys hold client
addresses).

Audit events carry no personal data (api/services/audit.py) and stay as
they are: they are chained and append-only. Each form whose data is removed
gets a ``form.personal_data_removed`` event, and moves in the change feed, so
a system that copied the form can remove its copy too.

Batches of forms commit on their own: the command can be interrupted and
run again, and forms already done are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.orm import Session

from ..models import Check, Form, IdempotencyRecord, PortalSession, RateLimit
from . import audit, sign_in
from .scans import MAX_OFFLINE

ACTOR = "system:retention"
EVENT = "form.personal_data_removed"
NOTHING_FOLLOWS = ("rejected", "cancelled", "refunded", "validated", "partially_validated")
# Rate-limit windows are a minute or an hour; a counter a day old is over
# (marks of familiar addresses, api/services/sign_in.py, are kept longer).
RATE_LIMIT_KEPT = timedelta(days=1)

REMOVED = {
    "first_name": None,
    "last_name": None,
    "passport_number": None,
    "passport_key": None,
    "date_of_birth": None,
    "email": None,
}


@dataclass
class Report:
    days: int
    forms: int = 0
    batches: int = 0
    idempotency_records: int = 0
    portal_sessions: int = 0
    rate_limits: int = 0

    def __str__(self) -> str:
        return (f"{self.forms} form(s) had their personal data removed (final status more than "
                f"{self.days} day(s) ago) in {self.batches} batch(es); deleted {self.idempotency_records} "
                f"stored Idempotency-Key response(s), {self.portal_sessions} ended browser session(s) and "
                f"{self.rate_limits} old rate-limit counter(s)")


def due(now: datetime, days: int):
    """The condition of forms whose personal data is due for removal."""
    cutoff = now - timedelta(days=days)
    return and_(
        Form.personal_data_removed_at.is_(None),
        or_(
            and_(Form.status.in_(NOTHING_FOLLOWS), Form.updated_at < cutoff),
            and_(Form.status == "expired", Form.updated_at < min(cutoff, now - MAX_OFFLINE)),
        ),
    )


def purge(session: Session, now: datetime, days: int, *, batch: int = 200) -> Report:
    """Remove the personal data that is due (see the module's docstring);
    commits after each batch."""
    report = Report(days)
    after = ""
    while True:
        # Forms in id order, so every batch makes progress even if a form
        # changes between this query and the update.
        ids = session.scalars(
            select(Form.id).where(due(now, days), Form.id > after).order_by(Form.id).limit(batch)).all()
        if not ids:
            break
        after = ids[-1]
        removed = session.scalars(
            update(Form).where(Form.id.in_(ids), due(now, days))
            .values(**REMOVED, personal_data_removed_at=now)
            .returning(Form.id)
            .execution_options(synchronize_session=False)
        ).all()
        if removed:
            session.execute(update(Check).where(Check.form_id.in_(removed), Check.note.is_not(None))
                            .values(note=None))
            for form_id in sorted(removed):
                audit.record(session, form_id, EVENT, ACTOR, at=now, retention_days=days)
        session.commit()
        report.forms += len(removed)
        report.batches += 1
    report.idempotency_records = _delete_idempotency_records(session, now - timedelta(days=days), batch)
    report.portal_sessions = session.execute(
        delete(PortalSession).where(PortalSession.expires_at <= now)).rowcount
    familiar = RateLimit.key.like(f"%{sign_in.FAMILIAR_MARK}%")
    report.rate_limits = session.execute(delete(RateLimit).where(or_(
        ~familiar & (RateLimit.window_start < int((now - RATE_LIMIT_KEPT).timestamp())),
        RateLimit.window_start < int((now - sign_in.FAMILIAR_FOR).timestamp()),
    ))).rowcount
    session.commit()
    return report


def _delete_idempotency_records(session: Session, before: datetime, batch: int) -> int:
    deleted = 0
    while True:
        keys = session.execute(
            select(IdempotencyRecord.owner, IdempotencyRecord.key)
            .where(IdempotencyRecord.created_at < before).limit(batch)).all()
        if not keys:
            return deleted
        deleted += session.execute(delete(IdempotencyRecord).where(
            tuple_(IdempotencyRecord.owner, IdempotencyRecord.key).in_([tuple(k) for k in keys]))).rowcount
        session.commit()
