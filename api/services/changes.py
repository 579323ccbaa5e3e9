"""The forms change feed: every committed change of a form gets the next
number of one counter, in commit order.

Why not ``updated_at``: a transaction stamps its rows when it runs and they
become visible when it commits. A change stamped 12:00:00.100 that commits
after one stamped 12:00:00.200 appears behind a reader that already paged
past .200, and a cursor on ``updated_at`` skips it for good (PostgreSQL; on
SQLite the timestamp is taken before the write lock, so the same happens).

The number is taken from a counter row that the transaction updates as the
very last thing before it commits (a ``before_commit`` hook; the audit chain,
api/services/audit_chain.py, takes its own counter right after; on
PostgreSQL one call takes both: api/services/audit.py). The row
lock is held until the commit, so the next transaction gets the next number
only after this one is visible: numbers follow commit order, and a reader that
has seen number N has seen every change numbered below N. A cursor on the
number therefore never skips a change, and never repeats one (a form changed
again gets a new, higher number and shows up once more, as a new change).
Writers of forms queue on the counter only for the moment of their commit.
Taking the counter last also rules out deadlocks: a transaction holding it
touches no row it has not locked already, but for the audit chain's counter,
which every transaction takes after this one and never before it. On
PostgreSQL a transaction whose only write is one form's (a lone QR scan's
verdict, a lone issue) takes both counters in that write's own statement,
after locking the form's row or the invoice's lock, and waits on nothing
afterwards (``audit.record_pair_after``, ``forms._issue_statement``): the
same order, one round trip less.

This works the same on both databases: on SQLite there is one writer at a
time anyway, on PostgreSQL the lock orders writers. (PostgreSQL offers a
lock-free alternative, filtering rows by ``pg_snapshot_xmin`` of a per-row
transaction id, but it has no SQLite twin and a long transaction holds the
whole feed back.)

Which forms changed: those named by ``audit.record`` (every status change
records an event in its transaction) and forms written through the ORM.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, bindparam, event, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..models import ChangeCounter, Form, FormLine, held

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


def noted_any(session: Session) -> bool:
    """Whether the session's transaction has changed any form yet."""
    return any(session.info.get(_KEY, {}).values())


def noted(session: Session) -> list[str]:
    """The forms the committing transaction changed, in the order they
    changed, forgotten here: to be numbered by the one ``before_commit``
    listener (api/services/audit.py), before the audit chain takes its
    counter, so every writer takes the two counters in the same order.
    The caller has flushed (ORM changes may name more forms)."""
    changed = session.info.get(_KEY)
    if not changed:
        return []
    ids = list({form_id: None for noted in changed.values() for form_id in noted})
    changed.clear()
    return ids


def _take_numbers():
    """SQLite: ``n`` more numbers of the counter, returning the last: one
    statement, built once (every commit that changes a form runs it). On
    PostgreSQL the function ``take_commit_numbers`` (migrations 0014 and
    0015) or the write's own statement (``audit.Numbers``) takes them."""
    counters, n = ChangeCounter.__table__, bindparam("n", type_=BigInteger)
    # The first number ever (or after the counter row was lost) follows the
    # highest number already given.
    start = select(func.coalesce(func.max(Form.__table__.c.change_seq), 0) + n).scalar_subquery()
    return (sqlite.insert(counters).values(name=COUNTER, value=start)
            .on_conflict_do_update(index_elements=[counters.c.name], set_={"value": counters.c.value + n})
            .returning(counters.c.value))


_TAKE = _take_numbers()
_FORMS = Form.__table__
_NUMBER = update(_FORMS).where(_FORMS.c.id == bindparam("b_id")).values(change_seq=bindparam("b_seq"))


def assign(session: Session, form_ids: list[str]) -> None:
    """SQLite: give ``form_ids`` the next numbers of the counter (taken
    under its row lock until the transaction ends)."""
    n = len(form_ids)
    connection = session.connection()
    last = connection.execute(_TAKE, {"n": n}).scalar_one()
    connection.execute(_NUMBER, [{"b_id": form_id, "b_seq": seq} for form_id, seq in _numbers(form_ids, last)])
    numbered(session, form_ids, last)


def _numbers(form_ids: list[str], last: int):
    return zip(form_ids, range(last - len(form_ids) + 1, last + 1))


def numbered(session: Session, form_ids: list[str], last: int) -> None:
    """``form_ids`` were given the numbers up to ``last``: forms loaded in
    this session see theirs without a reload."""
    for form_id, seq in _numbers(form_ids, last):
        form = held(session, Form, form_id)
        if form is not None:
            set_committed_value(form, "change_seq", seq)
