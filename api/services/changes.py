"""The forms change feed: every committed change of a form gets the next
number of one counter, in commit order.

Why not ``updated_at``: a transaction stamps its rows when it runs and they
become visible when it commits. A change stamped 12:00:00.100 that commits
after one stamped 12:00:00.200 appears behind a reader that already paged
past .200, and a cursor on ``updated_at`` skips it for good (PostgreSQL; on
SQLite the timestamp is taken before the write lock, so the same happens).

The number is taken from a counter row that the transaction updates as the
very last thing before it commits (a ``before_commit`` hook; the audit chain,
api/services/audit_chain.py, takes its own counter right after). The row
lock is held until the commit, so the next transaction gets the next number
only after this one is visible: numbers follow commit order, and a reader that
has seen number N has seen every change numbered below N. A cursor on the
number therefore never skips a change, and never repeats one (a form changed
again gets a new, higher number and shows up once more, as a new change).
Writers of forms queue on the counter only for the moment of their commit.
Taking the counter last also rules out deadlocks: a transaction holding it
touches no row it has not locked already, but for the audit chain's counter,
which every transaction takes after this one and never before it.

This works the same on both databases: on SQLite there is one writer at a
time anyway, on PostgreSQL the lock orders writers. (PostgreSQL offers a
lock-free alternative, filtering rows by ``pg_snapshot_xmin`` of a per-row
transaction id, but it has no SQLite twin and a long transaction holds the
whole feed back.)

Which forms changed: those named by ``audit.record`` (every status change
records an event in its transaction) and forms written through the ORM.
"""
from __future__ import annotations

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..models import ChangeCounter, Form, FormLine

COUNTER = "forms"
_KEY = "changed_forms"


def _current(session: Session):
    return session.get_nested_transaction() or session.get_transaction()


def note(session: Session, form_id: str) -> None:
    """Record that ``form_id`` changes in the session's current transaction."""
    transaction = _current(session) or session.begin()
    # A dict as an ordered set: forms are numbered in the order they changed.
    session.info.setdefault(_KEY, {}).setdefault(transaction, {})[form_id] = None


@event.listens_for(Session, "before_flush")
def _note_orm_changes(session, _flush_context, _instances) -> None:
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Form) and (obj in session.new or session.is_modified(obj)):
            note(session, obj.id)
        elif isinstance(obj, FormLine) and obj.form_id and session.is_modified(obj):
            note(session, obj.form_id)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session) -> None:
    # While the transaction or SAVEPOINT rolled back is still the current
    # one: its end, which comes next, would hand a SAVEPOINT's forms up to
    # the enclosing transaction (after_soft_rollback comes too late for that).
    session.info.get(_KEY, {}).pop(_current(session), None)


@event.listens_for(Session, "after_transaction_end")
def _hand_up_or_forget(session, transaction) -> None:
    changed = session.info.get(_KEY)
    if not changed:
        return
    ids = changed.pop(transaction, None)
    if ids and transaction.nested and transaction.parent is not None:
        # A released SAVEPOINT's changes belong to the enclosing transaction.
        changed.setdefault(transaction.parent, {}).update(ids)
    if transaction.parent is None:
        changed.clear()


def number_noted(session: Session) -> None:
    """Number the forms the committing transaction changed: called by the
    one ``before_commit`` listener (api/services/audit.py), before the audit
    chain takes its counter, so every writer takes the two counters in the
    same order."""
    changed = session.info.get(_KEY)
    if not changed:
        return
    session.flush()  # ORM changes first: they may name more forms
    ids = list({form_id: None for noted in changed.values() for form_id in noted})
    changed.clear()
    if ids:
        assign(session, ids)


def assign(session: Session, form_ids: list[str]) -> None:
    """Give ``form_ids`` the next numbers of the counter (taken under its
    row lock until the transaction ends)."""
    n = len(form_ids)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # The first number ever (or after the counter row was lost) follows the
    # highest number already given.
    start = select(func.coalesce(func.max(Form.change_seq), 0) + n).scalar_subquery()
    statement = dialect.insert(ChangeCounter).values(name=COUNTER, value=start)
    statement = statement.on_conflict_do_update(
        index_elements=[ChangeCounter.name], set_={"value": ChangeCounter.value + n}
    ).returning(ChangeCounter.value)
    last = session.execute(statement).scalar_one()
    numbers = {form_id: last - n + i for i, form_id in enumerate(form_ids, start=1)}
    forms = Form.__table__
    session.execute(
        update(forms).where(forms.c.id == bindparam("b_id")).values(change_seq=bindparam("b_seq")),
        [{"b_id": form_id, "b_seq": seq} for form_id, seq in numbers.items()],
    )
    # Forms loaded in this session see their number without a reload.
    for form_id, seq in numbers.items():
        form = session.identity_map.get(session.identity_key(Form, form_id))
        if form is not None:
            set_committed_value(form, "change_seq", seq)
