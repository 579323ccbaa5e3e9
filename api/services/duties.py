"""Officers on duty: an officer signs on at one exit point's desk and may
decide only the checks waiting there.

A decision is certified at an exit point: the officer must stand where the
traveller and the goods are. Signing on is recorded here and in the audit
trail; a duty ends when the officer signs off, signs on elsewhere, or after
the longest shift (``DESK_DUTY_MAX_HOURS``), so a forgotten sign-on does not
leave an officer on duty somewhere for good.

Duties are intervals, not just "where is the officer now": a decision made
offline on the handheld counts at the moment it was made, so it is judged
against the duty the officer was on then, even if it reaches the API after
they moved on.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..auth import Principal
from ..models import Duty, ExitPoint
from ..problems import Problem
from . import audit

# Clocks of handhelds and of the API differ a little: a decision a handheld
# stamped a moment before its duty began, or after it ended, by its own
# clock still counts. (A decision without such a stamp is judged by the
# API's clock alone.)
CLOCK_SKEW = timedelta(minutes=5)


def _officer_id(officer: Principal) -> int:
    if officer.kind != "user" or officer.role != "officer":
        raise Problem(403, "forbidden", "Only customs officers go on duty at a desk.")
    return int(officer.id)


def current(session: Session, officer: Principal, now: datetime, longest: timedelta) -> Duty | None:
    """The officer's duty at ``now``, if any."""
    return session.scalar(
        select(Duty)
        .where(Duty.officer_id == _officer_id(officer), Duty.ended_at.is_(None),
               Duty.started_at > now - longest)
        .order_by(Duty.started_at.desc(), Duty.id.desc())
        .limit(1)
    )


def required(session: Session, officer: Principal, now: datetime, longest: timedelta) -> Duty:
    """The officer's duty now; a 403 ``not_on_duty`` problem if they are on
    duty nowhere. The desk's work with a traveller (reading their desk
    pass, opening a check) happens where the officer is on duty."""
    duty = current(session, officer, now, longest)
    if duty is None:
        raise Problem(403, "not_on_duty",
                      "You are not on duty at any desk: sign on at your exit point first (POST /api/v1/duty).")
    return duty


def sign_on(session: Session, officer: Principal, exit_point_code: str, now: datetime) -> Duty:
    """Start the officer's duty at ``exit_point_code``, ending any other."""
    officer_id = _officer_id(officer)
    exit_point = session.scalar(select(ExitPoint).where(ExitPoint.code == exit_point_code.strip().upper()))
    if exit_point is None:
        raise Problem(422, "invalid_request", "No exit point with this code.",
                      errors={"exit_point": ["No exit point with this code."]})
    _sign_off(session, officer, officer_id, now)
    duty = Duty(officer_id=officer_id, exit_point_id=exit_point.id, started_at=now)
    session.add(duty)
    session.flush()
    audit.record(session, None, "officer.signed_on", officer.actor, at=now,
                 exit_point=exit_point.code, duty=duty.id)
    return duty


def sign_off(session: Session, officer: Principal, now: datetime) -> None:
    """End the officer's duty (nothing to do if there is none)."""
    _sign_off(session, officer, _officer_id(officer), now)


def _sign_off(session: Session, officer: Principal, officer_id: int, now: datetime) -> None:
    for duty_id, code in _end_open(session, officer_id, now):
        audit.record(session, None, "officer.signed_off", officer.actor, at=now, exit_point=code, duty=duty_id)


def _end_open(session: Session, officer_id: int, now: datetime) -> list[tuple[int, str]]:
    open_duties = session.execute(
        select(Duty.id, ExitPoint.code).join(ExitPoint, Duty.exit_point_id == ExitPoint.id)
        .where(Duty.officer_id == officer_id, Duty.ended_at.is_(None))
    ).all()
    if open_duties:
        session.execute(
            update(Duty).where(Duty.id.in_([d for d, _ in open_duties]), Duty.ended_at.is_(None))
            .values(ended_at=now).execution_options(synchronize_session=False)
        )
    return [(d, code) for d, code in open_duties]


def covering(session: Session, officer: Principal, exit_point_id: int, at: datetime,
             longest: timedelta, *, skew: timedelta = timedelta(0)) -> Duty | None:
    """The officer's duty at exit point ``exit_point_id`` at the moment ``at``,
    if there was one; give or take ``skew`` when ``at`` was read off a
    handheld's clock (``CLOCK_SKEW``), none when it is the API's own."""
    return session.scalar(
        select(Duty)
        .where(
            Duty.officer_id == _officer_id(officer),
            Duty.exit_point_id == exit_point_id,
            Duty.started_at <= at + skew,
            Duty.started_at > at - longest,
            (Duty.ended_at.is_(None)) | (Duty.ended_at > at - skew),
        )
        .order_by(Duty.started_at.desc(), Duty.id.desc())
        .limit(1)
    )
