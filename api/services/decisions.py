"""Officers' decisions at the customs desk, and the desk's queue.

A decision closes the form's check with one atomic compare-and-set: ten
officers pressing "validate" at once give one decision and nine 409s.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, contains_eager

from shared import rules

from ..auth import Principal
from ..models import Check, ExitPoint, Form, FormLine
from ..problems import Problem
from . import audit

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


def decide(
    session: Session,
    officer: Principal,
    form: Form,
    outcome: str,
    lines: list[dict] | None,
    reason_code: str | None,
    note: str | None,
    now: datetime,
) -> Form:
    """Record an officer's decision on a form waiting at the desk."""
    if outcome == "rejected" and reason_code not in REJECTION_REASONS:
        raise _invalid("reason_code", "Give a reason code for a rejection: " + ", ".join(REJECTION_REASONS))
    if outcome == "rejected" and reason_code == "other" and not (note or "").strip():
        raise _invalid("note", "Describe the reason in a note.")
    presence = _presence(form, outcome, lines)
    decided = session.execute(
        update(Check)
        .where(Check.form_id == form.id, Check.status == "pending")
        .values(status="decided", decided_at=now, officer_id=int(officer.id),
                outcome=outcome, reason_code=reason_code, note=note)
    ).rowcount == 1
    if not decided:
        raise Problem(
            409, "already_decided",
            f"Form {form.id} is not waiting for a decision (it is {form.status}).",
        )
    values: dict = {"status": outcome, "updated_at": now}
    if outcome != "rejected":
        kept = [line for line in form.lines if presence[line.line]]
        totals = rules.compute_totals(
            [rules.Line(l.quantity, l.unit_price_cents, l.vat_rate_bp, l.category) for l in kept],
            form.retailer.intermediary.fee_bp if form.retailer.intermediary else 0,
        )
        values.update(
            validated_at=now,
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
    check = session.scalar(select(Check).where(Check.form_id == form.id))
    # The note is free text that may name the traveller: it stays with the
    # check, which the retention command can clear, and the unchangeable
    # audit trail records only that there was one.
    audit.record(
        session, form.id, f"form.{outcome}", officer.actor, at=now,
        exit_point=check.exit_point.code, by="officer", reason_code=reason_code, has_note=bool(note),
        lines=[{"line": n, "present": p} for n, p in sorted(presence.items())],
        validated_total_cents=form.validated_total_cents,
    )
    return form
