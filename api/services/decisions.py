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

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, contains_eager

from shared import rules

from ..auth import Principal
from ..models import Check, ExitPoint, Form, FormLine
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


def queue(session: Session, exit_point_code: str | None, status: str, limit: int, after_id: int | None,
          *, officer_id: int | None = None, decided_since=None):
    """Checks at an exit point, oldest first (the desk's queue); with
    ``officer_id``, that officer's decisions (the history). Each check comes
    with its form and exit point and its ``line_count`` (the list shows how
    many lines a form has, not the lines), all from one statement."""
    # The page's checks first, by themselves: the desk's queue reads the
    # partial index of pending checks in order and stops after ``limit``
    # rows, however many checks and forms there are; only those rows are
    # then joined to their forms.
    page = select(Check.id).where(Check.status == status)
    if exit_point_code:
        page = page.where(Check.exit_point_id == select(ExitPoint.id).where(
            ExitPoint.code == exit_point_code.upper()).scalar_subquery())
    if officer_id is not None:
        page = page.where(Check.officer_id == officer_id)
    if decided_since is not None:
        page = page.where(Check.decided_at >= decided_since)
    if after_id is not None:
        anchor = session.get(Check, after_id) if isinstance(after_id, int) else None
        if anchor is None:
            raise Problem(400, "invalid_cursor", "The cursor is not one this API gave out.",
                          errors={"cursor": ["Not a valid cursor."]})
        page = page.where(
            (Check.opened_at > anchor.opened_at)
            | ((Check.opened_at == anchor.opened_at) & (Check.id > anchor.id))
        )
    page = page.order_by(Check.opened_at, Check.id).limit(limit).subquery()
    line_count = (select(func.count()).where(FormLine.form_id == Check.form_id)
                  .correlate(Check).scalar_subquery())
    query = (
        select(Check, line_count)
        .join(page, page.c.id == Check.id)
        .join(Check.form)
        .join(Check.exit_point)
        .options(contains_eager(Check.form), contains_eager(Check.exit_point))
        .order_by(Check.opened_at, Check.id)
    )
    checks = []
    for check, lines in session.execute(query):
        check.line_count = lines
        checks.append(check)
    return checks


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
