"""Officers' decisions at the customs desk, and the desk's queue.

A decision closes the form's check with one atomic compare-and-set: ten
officers pressing "validate" at once give one decision and nine 409s.

Who may decide, and when:

- only an officer on duty at the exit point whose desk holds the check
  (``duties``): the decision certifies an export where the goods are;
- a validation, full or partial, only until the export deadline ends, or
  for a check opened before then, until the desk's grace period after it
  (``shared.rules.desk_may_validate``); a rejection at any time while the
  check is open;
- a decision made offline on the handheld counts at the moment it was made
  (``decided_at``, within the bounds offline scans have), so a decision made
  in time is not refused because the network came back late.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, literal_column, select, update
from sqlalchemy.orm import Session

from shared import rules

from ..auth import Principal
from ..database import HotStatement
from ..models import CHECK_STATUSES, Check, ExitPoint, Form, FormLine
from ..problems import Problem
from . import audit, duties

OUTCOMES = ("validated", "partially_validated", "rejected")
REJECTION_REASONS = (
    "goods_not_presented",
    "goods_used",
    "eu_residence",
    "deadline_passed",
    "passport_mismatch",
    "other",
)


@dataclass(frozen=True, slots=True)
class QueuedForm:
    """What the desk's list shows of a check's form."""

    first_name: str | None
    last_name: str | None
    personal_data_removed_at: datetime | None
    passport_number: str | None = field(repr=False)  # personal data
    passport_country: str
    passport_key: str | None
    total_cents: int


@dataclass(frozen=True, slots=True)
class QueuedExitPoint:
    code: str


@dataclass(frozen=True, slots=True)
class QueuedCheck:
    """A check in the desk's queue or an officer's history, as CheckSchema
    shows it: plain values read in one statement, not ORM objects (building
    and tracking fifty checks and forms with every column cost more than
    the rest of the request)."""

    id: int
    form_id: str
    status: str
    opened_at: datetime
    fired_rules: list
    outcome: str | None
    decided_at: datetime | None
    officer_id: int | None
    note: str | None
    exit_point: QueuedExitPoint
    form: QueuedForm
    line_count: int


_CHECKS, _FORMS, _EXIT_POINTS, _LINES = (Check.__table__, Form.__table__, ExitPoint.__table__,
                                         FormLine.__table__)
_LISTED_CHECK = tuple(_CHECKS.c[name] for name in (
    "id", "form_id", "status", "opened_at", "fired_rules", "outcome", "decided_at", "officer_id", "note"))
_LISTED_FORM = tuple(_FORMS.c[name] for name in (
    "first_name", "last_name", "personal_data_removed_at", "passport_number", "passport_country",
    "passport_key", "total_cents"))


@functools.cache
def _listing(status: str, exit_point: bool, officer: bool, since: bool, after: bool) -> HotStatement:
    """The list's statement for checks in ``status`` with the filters asked
    for, built once per combination (the desk's queue asks for the same one
    every few seconds)."""
    if status not in CHECK_STATUSES:
        raise ValueError(f"no check status {status!r}")
    # The page's checks first, by themselves: the desk's queue reads the
    # partial index of pending checks in order and stops after ``limit``
    # rows, however many checks and forms there are; only those rows are
    # then joined to their forms. The status is written into the statement,
    # not bound: a generic plan for "status = $1" (the plan PostgreSQL keeps
    # for a prepared statement) cannot use that index.
    page = select(_CHECKS.c.id).where(_CHECKS.c.status == literal_column(f"'{status}'"))
    if exit_point:
        page = page.where(_CHECKS.c.exit_point_id == select(_EXIT_POINTS.c.id).where(
            _EXIT_POINTS.c.code == bindparam("exit_point")).scalar_subquery())
    if officer:
        page = page.where(_CHECKS.c.officer_id == bindparam("officer_id"))
    if since:
        page = page.where(_CHECKS.c.decided_at >= bindparam("decided_since", type_=_CHECKS.c.decided_at.type))
    if after:
        opened = bindparam("after_opened_at", type_=_CHECKS.c.opened_at.type)
        page = page.where((_CHECKS.c.opened_at > opened)
                          | ((_CHECKS.c.opened_at == opened) & (_CHECKS.c.id > bindparam("after_id"))))
    page = page.order_by(_CHECKS.c.opened_at, _CHECKS.c.id).limit(bindparam("limit")).subquery()
    line_count = (select(func.count()).where(_LINES.c.form_id == _CHECKS.c.form_id)
                  .correlate(_CHECKS).scalar_subquery())
    return HotStatement(
        select(*_LISTED_CHECK, _EXIT_POINTS.c.code, *_LISTED_FORM, line_count)
        .join(page, page.c.id == _CHECKS.c.id)
        .join(_FORMS, _FORMS.c.id == _CHECKS.c.form_id)
        .join(_EXIT_POINTS, _EXIT_POINTS.c.id == _CHECKS.c.exit_point_id)
        .order_by(_CHECKS.c.opened_at, _CHECKS.c.id))


def queue(session: Session, exit_point_code: str | None, status: str, limit: int, after_id: int | None,
          *, officer_id: int | None = None, decided_since=None) -> list[QueuedCheck]:
    """Checks at an exit point, oldest first (the desk's queue); with
    ``officer_id``, that officer's decisions (the history). Each check comes
    with what the list shows of its form and exit point and its
    ``line_count`` (the list shows how many lines a form has, not the
    lines), all from one statement."""
    params = {"limit": limit}
    if exit_point_code:
        params["exit_point"] = exit_point_code.upper()
    if officer_id is not None:
        params["officer_id"] = officer_id
    if decided_since is not None:
        params["decided_since"] = decided_since
    if after_id is not None:
        anchor = session.get(Check, after_id) if isinstance(after_id, int) else None
        if anchor is None:
            raise Problem(400, "invalid_cursor", "The cursor is not one this API gave out.",
                          errors={"cursor": ["Not a valid cursor."]})
        params.update(after_opened_at=anchor.opened_at, after_id=anchor.id)
    statement = _listing(status, bool(exit_point_code), officer_id is not None, decided_since is not None,
                         after_id is not None)
    checked, listed = len(_LISTED_CHECK), len(_LISTED_FORM)
    return [QueuedCheck(*row[:checked], QueuedExitPoint(row[checked]),
                        QueuedForm(*row[checked + 1:checked + 1 + listed]), row[-1])
            for row in statement.execute(session, params).fetchall()]


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, "invalid_decision", message, errors={field: [message]})


def _presence(form: Form, outcome: str, lines: list[dict] | None) -> dict[int, bool]:
    """Which lines the officer saw, checked against the outcome chosen."""
    numbers = {line.line for line in form.lines}
    given: dict[int, bool] = {}
    for entry in lines or []:
        if entry["line"] not in numbers:
            raise _invalid("lines", f"Form {form.id} has no line {entry['line']}.")
        if entry["line"] in given:
            raise _invalid("lines", f"Line {entry['line']} is listed twice.")
        given[entry["line"]] = entry["present"]
    if outcome == "validated":
        if not all(given.values()):
            raise _invalid("lines", "A full validation cannot have absent lines; validate partially.")
        return {n: True for n in numbers}
    if outcome == "partially_validated":
        if set(given) != numbers:
            raise _invalid("lines", "A partial validation lists every line as present or not.")
        present = sum(given.values())
        if present == 0:
            raise _invalid("lines", "No line is present: reject the form instead.")
        if present == len(numbers):
            raise _invalid("lines", "Every line is present: validate the form in full.")
        return given
    return given


@dataclass(frozen=True)
class DeskRules:
    """The settings decisions are judged by."""

    timezone: str  # of the member state's dates (the export deadline)
    grace: timedelta  # DESK_DECISION_GRACE_MINUTES
    longest_duty: timedelta  # DESK_DUTY_MAX_HOURS

    @classmethod
    def from_config(cls, config) -> "DeskRules":
        return cls(
            timezone=config["RULESET"].timezone,
            grace=timedelta(minutes=config["DESK_DECISION_GRACE_MINUTES"]),
            longest_duty=timedelta(hours=config["DESK_DUTY_MAX_HOURS"]),
        )


# How far back a handheld that was offline may date a decision, and how far
# ahead its clock may run: the same bounds as an offline kiosk's scans.
MAX_OFFLINE = timedelta(days=14)
CLOCK_SKEW = timedelta(minutes=5)


def decision_time(decided_at: datetime | None, now: datetime) -> datetime:
    """When the officer decided: ``now``, or the moment a handheld that was
    offline says it decided, within the bounds of ``MAX_OFFLINE`` and
    ``CLOCK_SKEW``."""
    if decided_at is None:
        return now
    if not now - MAX_OFFLINE <= decided_at <= now + CLOCK_SKEW:
        raise Problem(422, "invalid_request", "decided_at is too far from the current time.",
                      errors={"decided_at": ["Must be within the last 14 days and not in the future."]})
    return min(decided_at, now)


def _not_waiting(form: Form) -> Problem:
    return Problem(409, "already_decided",
                   f"Form {form.id} is not waiting for a decision (it is {form.status}).")


def _open_check(session: Session, form: Form, at: datetime, desk: DeskRules) -> Check:
    """The form's check, if a decision made at ``at`` may still close it:
    a pending check, or one that expired after ``at`` (a decision made in
    time on a handheld that was offline while the check expired)."""
    check = session.scalar(select(Check).where(Check.form_id == form.id))
    if check is not None and check.status == "pending":
        return check
    if check is not None and check.status == "expired" and at < rules.desk_closes_at(
            form.export_deadline, desk.timezone, desk.grace):
        return check
    raise _not_waiting(form)


def decide(
    session: Session,
    officer: Principal,
    form: Form,
    outcome: str,
    lines: list[dict] | None,
    reason_code: str | None,
    note: str | None,
    now: datetime,
    *,
    desk: DeskRules,
    decided_at: datetime | None = None,
) -> Form:
    """Record an officer's decision on a form waiting at the desk.

    The validated amounts are those of the lines shown, with the fee that
    was in force when the form was issued. The member state's minimum
    amount (NL: EUR 50.00 including VAT) is a condition on the purchase,
    checked when the form is issued; a partial validation whose goods are
    worth less than it is still recorded as it is: customs certify the
    export of the goods that were shown, and whether a refund is still due
    for them is for the retailer or its intermediary to judge (they see
    ``validated_total_cents``).
    """
    if outcome == "rejected" and reason_code not in REJECTION_REASONS:
        raise _invalid("reason_code", "Give a reason code for a rejection: " + ", ".join(REJECTION_REASONS))
    if outcome == "rejected" and reason_code == "other" and not (note or "").strip():
        raise _invalid("note", "Describe the reason in a note.")
    presence = _presence(form, outcome, lines)
    claimed = decision_time(decided_at, now)
    for _attempt in range(3):
        check = _open_check(session, form, claimed, desk)
        # A handheld's clock a little behind the API's must not date a
        # decision before the check existed; further back is no clock's
        # error but a decision dated into the time before the deadline.
        if decided_at is not None and claimed < check.opened_at - duties.CLOCK_SKEW:
            raise Problem(422, "invalid_request", "decided_at is before the check was opened.",
                          errors={"decided_at": ["Must not be before the check was opened."]})
        at = max(claimed, check.opened_at)
        exit_point = check.exit_point
        duty = duties.covering(session, officer, check.exit_point_id, at, desk.longest_duty,
                               skew=duties.CLOCK_SKEW if decided_at is not None else timedelta(0))
        if duty is None:
            raise Problem(
                403, "not_on_duty_here",
                f"The check of form {form.id} is at the desk of {exit_point.code} ({exit_point.name}); "
                f"only an officer on duty there can decide it.",
            )
        if outcome != "rejected" and not rules.desk_may_validate(
                form.export_deadline, check.opened_at, at, desk.timezone, desk.grace):
            raise Problem(
                422, "deadline_passed",
                f"The export deadline of form {form.id} ended with {form.export_deadline.isoformat()}: "
                "its export can no longer be validated, only rejected.",
                errors={"outcome": ["Past the export deadline: only a rejection can be recorded."]},
            )
        # Closed only as it was read: still open, and still at this desk
        # (the traveller may have scanned the form at another exit point
        # meanwhile, which moves the check there).
        closed = session.execute(
            update(Check)
            .where(Check.id == check.id, Check.status == check.status,
                   Check.exit_point_id == check.exit_point_id)
            .values(status="decided", decided_at=at, officer_id=int(officer.id), outcome=outcome,
                    reason_code=reason_code, note=note, duty_id=duty.id)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        if closed:
            break
        session.expire_all()
        session.refresh(form)
    else:
        raise Problem(409, "conflict", "Another request changed the same check at the same moment; retry.")
    values: dict = {"status": outcome, "updated_at": now, "exit_point_id": check.exit_point_id}
    if outcome != "rejected":
        kept = [line for line in form.lines if presence[line.line]]
        totals = rules.compute_totals(
            [rules.Line(l.quantity, l.unit_price_cents, l.vat_rate_bp, l.category) for l in kept],
            form.fee_bp,
        )
        values.update(
            validated_at=at,
            validated_total_cents=totals.total_cents,
            validated_vat_cents=totals.vat_cents,
            validated_refund_cents=totals.refund_cents,
        )
    session.execute(
        update(Form).where(Form.id == form.id).values(**values)
        .execution_options(synchronize_session=False)
    )
    for line in form.lines:
        if line.line in presence:
            line.present = presence[line.line]
    session.flush()
    session.refresh(form)
    offline = {"decided_at": at.isoformat()} if at != now else {}
    # The note is free text that may name the traveller: it stays with the
    # check, which the retention command can clear, and the unchangeable
    # audit trail records only that there was one.
    audit.record(
        session, form.id, f"form.{outcome}", officer.actor, at=now,
        exit_point=exit_point.code, by="officer", reason_code=reason_code, has_note=bool(note),
        lines=[{"line": n, "present": p} for n, p in sorted(presence.items())],
        validated_total_cents=form.validated_total_cents, duty=duty.id, **offline,
    )
    return form
