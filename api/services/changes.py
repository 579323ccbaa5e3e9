"""The forms change feed: every committed change of a form gets the next
number of one counter, in the order changes become visible.

Why not ``updated_at``: a transaction stamps its rows when it runs and they
become visible when it commits. A change stamped 12:00:00.100 that commits
after one stamped 12:00:00.200 appears behind a reader that already paged
past .200, and a cursor on ``updated_at`` skips it for good (PostgreSQL; on
SQLite the timestamp is taken before the write lock, so the same happens).

A write that changes a form only marks it changed: its ``change_seq``
becomes its number negated (a new form's is NULL, never numbered), in the
write's own statement or as its transaction commits (``mark``; on
PostgreSQL in the commit's one call, api/services/audit.py). Negated, not
dropped: should the counter row be lost, the highest number ever given is
still there to start again after. The numbers are given by
whoever reads the feed (``number_changed``), before listing it: under the
counter row's lock, every marked form whose change has committed gets the
next numbers, and that numbering commits before the listing is read.
Numberings follow one another on the lock and each numbers only changes
already committed, so a reader that has seen number N has seen every change
numbered below N, and a change that commits later is numbered higher, at
the next reading. A cursor on the number therefore never skips a change and
never repeats one: a form changed again is marked again and comes once
more, at its latest (changed twice between two readings, it comes once).

Writers never take the counter, so no scan or issue waits for another
transaction's commit to be numbered: only readers queue on it, for one
UPDATE. A reader holding it waits for no form's row either (on PostgreSQL
it skips rows another transaction has locked, which that transaction may
be changing: they stay marked for the next reading), so it takes part in
no deadlock. (PostgreSQL offers a lock-free alternative, filtering rows by
``pg_snapshot_xmin`` of a per-row transaction id, but it has no SQLite
twin and a long transaction holds the whole feed back.)

Which forms changed: those named by ``audit.record`` (every status change
records an event in its transaction) and forms written through the ORM.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, bindparam, event, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
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
    changed, forgotten here: to be marked by the one ``before_commit``
    listener (api/services/audit.py). The caller has flushed (ORM changes
    may name more forms)."""
    changed = session.info.get(_KEY)
    if not changed:
        return []
    ids = list({form_id: None for noted in changed.values() for form_id in noted})
    changed.clear()
    return ids


_FORMS = Form.__table__
_COUNTERS = ChangeCounter.__table__
# Marked: never numbered (NULL) or changed since (negated).
MARKED = or_(_FORMS.c.change_seq.is_(None), _FORMS.c.change_seq < 0)
# What a write that changes a form sets its number to.
MARKING = -func.abs(_FORMS.c.change_seq)
# Whether any form is marked, asked by every reading: two lookups in the
# number's unique index. (``MARKED`` with LIMIT 1 was planned by
# PostgreSQL as a scan of the whole table when few forms were marked.)
_ANY_MARKED = select(or_(exists().where(_FORMS.c.change_seq.is_(None)), exists().where(_FORMS.c.change_seq < 0)))
_MARK = (update(_FORMS).where(_FORMS.c.id == bindparam("b_id"), _FORMS.c.change_seq > 0)
         .values(change_seq=MARKING))


# How many marked forms one reading numbers at most, the longest-marked
# first: a reading after a long pause holds the counter for a bounded
# moment, and the next reading numbers the rest (higher).
NUMBERED_PER_READING = 10_000

_LOCK_COUNTER = (update(_COUNTERS).where(_COUNTERS.c.name == COUNTER).values(value=_COUNTERS.c.value)
                 .returning(_COUNTERS.c.value))


def _make_counter(insert):
    """The counter's row made again (never made, or lost), after the
    highest number ever given (a marked form's negated one too), locked
    until the transaction ends. A reading that made it at the same time
    finds it made."""
    start = select(func.coalesce(func.max(func.abs(_FORMS.c.change_seq)), 0)).scalar_subquery()
    return (insert(_COUNTERS).values(name=COUNTER, value=start)
            .on_conflict_do_update(index_elements=[_COUNTERS.c.name], set_={"value": _COUNTERS.c.value})
            .returning(_COUNTERS.c.value))


def _number_marked():
    """The ``at_most`` longest-marked forms numbered after ``start``, in
    the order they were stamped; on PostgreSQL only those no other
    transaction holds. (Nested subqueries, not a WITH clause: SQLite's
    driver counts the rows of a statement only if it starts with UPDATE.)"""
    marked = (select(_FORMS.c.id, _FORMS.c.updated_at).where(MARKED)
              .order_by(_FORMS.c.updated_at, _FORMS.c.id).limit(bindparam("at_most", type_=BigInteger))
              .with_for_update(skip_locked=True, key_share=True).subquery("marked"))
    order = func.row_number().over(order_by=(marked.c.updated_at, marked.c.id))
    numbered = select(marked.c.id, (bindparam("start", type_=BigInteger) + order).label("seq")).subquery("numbered")
    return update(_FORMS).where(_FORMS.c.id == numbered.c.id).values(change_seq=numbered.c.seq)


_MAKE_COUNTER = {"postgresql": _make_counter(postgresql.insert), "sqlite": _make_counter(sqlite.insert)}
_NUMBER_MARKED = _number_marked()
_COUNT = update(_COUNTERS).where(_COUNTERS.c.name == COUNTER).values(value=bindparam("last", type_=BigInteger))


def number_changed(session: Session, at_most: int = NUMBERED_PER_READING) -> int:
    """Number the changes committed since the last reading (``at_most`` of
    them, the longest-marked first) and commit, so that what the caller
    reads next sees them (see above); how many. The caller has written
    nothing in the session's transaction."""
    if not session.scalar(_ANY_MARKED):
        return 0
    connection = session.connection()
    start = connection.execute(_LOCK_COUNTER).scalar()
    if start is None:
        start = connection.execute(_MAKE_COUNTER[connection.dialect.name]).scalar_one()
    count = connection.execute(_NUMBER_MARKED, {"start": start, "at_most": at_most}).rowcount
    if count:
        connection.execute(_COUNT, {"last": start + count})
    session.commit()
    return count


def mark(session: Session, form_ids: list[str]) -> None:
    """SQLite: mark ``form_ids`` changed (on PostgreSQL the commit's
    ``mark_forms_take_chain_numbers`` does). A form already marked keeps
    its row as it is."""
    session.connection().execute(_MARK, [{"b_id": form_id} for form_id in form_ids])
    marked(session, form_ids)


def marked(session: Session, form_ids: list[str]) -> None:
    """``form_ids`` were marked changed: forms loaded in this session see
    it without a reload."""
    for form_id in form_ids:
        form = held(session, Form, form_id)
        if form is not None and form.__dict__.get("change_seq") is not None:
            set_committed_value(form, "change_seq", -abs(form.__dict__["change_seq"]))
