"""Bulk submission: many forms in one transaction, each judged on its own,
so one bad form never keeps the others from being stored.

``forms.issue`` checks everything (retailer, eligibility) before it writes
anything, and its form's INSERT settles an invoice that already has a form
(also one stored earlier in the same batch, or by another request at the
same moment) by writing nothing, so a refused form leaves nothing behind.
What it cannot see coming is another clash at INSERT time.

On PostgreSQL each form runs inside a SAVEPOINT, and such a clash costs
only that form (409). SQLite's Python driver handles SAVEPOINTs unreliably
unless the engine takes over its transaction handling, so there the batch
starts over instead: the form stored meanwhile is then refused by the check
like any duplicate. SQLite has one writer at a time, so this can only
happen before the batch's first write, and one restart settles it.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..auth import Principal
from ..models import Form
from ..problems import Problem
from . import forms

RESTARTS = 3


def issue_each(
    session: Session, principal: Principal, drafts: list[dict | Problem], issuer: forms.Issuer, now: datetime
) -> list[Form | Problem]:
    """Issue every draft (a validated request body, or the Problem that
    parsing it raised); returns the Form or the Problem of each, in order.
    Nothing is committed."""
    savepoints = session.get_bind().dialect.name == "postgresql"
    for _restart in range(RESTARTS):
        try:
            return [_issue_one(session, principal, draft, issuer, now, savepoints) for draft in drafts]
        except IntegrityError:
            if savepoints:
                raise
            session.rollback()
    raise Problem(409, "conflict", "Other requests kept storing the same invoices at the same moment; retry.")


def _issue_one(session, principal, draft, issuer, now, savepoints: bool) -> Form | Problem:
    if isinstance(draft, Problem):
        return draft
    try:
        if not savepoints:
            return forms.issue(session, principal, draft, issuer, now)
        with session.begin_nested():
            return forms.issue(session, principal, draft, issuer, now)
    except Problem as problem:
        return problem
    except IntegrityError:
        if not savepoints:
            raise
        return Problem(409, "duplicate_invoice",
                       f"Invoice {draft['invoice_number']} already has a tax-free form.",
                       errors={"invoice_number": ["This invoice already has a tax-free form."]})
