"""The audit trail: every status change, scan and decision appends an event.

Events are only ever inserted, in the same transaction as the change they
describe, so the trail and the forms never disagree. The same goes for what
follows from an event: the webhook outbox rows that tell retailers and
intermediaries, the form's place in the change feed, and the event's link
in the hash chain that makes tampering show (api/services/audit_chain.py).

Event data names no traveller: it outlives the personal data on the form
(api/services/retention.py), and the chain makes it unchangeable.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app, has_app_context
from sqlalchemy import (BigInteger, SmallInteger, String, bindparam, column, exists, func, insert, literal_column,
                        select, text, union_all)
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from ..database import HotStatement
from ..models import Event, Form, utcnow
from . import audit_chain, changes, webhooks

# Events that leave the form itself as it was (a re-scan repeats the verdict
# already given): they do not move the form in the change feed.
UNCHANGING = frozenset({"form.scanned"})


_EVENTS = Event.__table__
_COLUMNS = ("form_id", "type", "actor", "exit_point", "data", "at")
_INSERT_EVENT = HotStatement(
    _EVENTS.insert().values({name: bindparam(name) for name in _COLUMNS}).returning(_EVENTS.c.id))


def record(
    session: Session,
    form_id: str | None,
    type: str,
    actor: str,
    *,
    exit_point: str | None = None,
    at: datetime | None = None,
    **data,
) -> Written:
    """Append an event to the trail in the session's transaction; returns
    it as written."""
    values, around_id = _event_values(form_id, type, actor, exit_point=exit_point, at=at, data=data)
    # ORM changes first (the form an issue adds, say: the event refers to
    # it), then one plain INSERT: no ORM object to flush on every write.
    session.flush()
    return _written(session, _INSERT_EVENT.execute(session, values).fetchone()[0], values, around_id)


def record_after(
    session: Session,
    write,
    params: dict,
    form_id: str | None,
    type: str,
    actor: str,
    *,
    exit_point: str | None = None,
    at: datetime | None = None,
    last: bool = False,
    ends: bool = False,
    **data,
) -> Written | None:
    """Run ``write`` (a Core UPDATE or INSERT of at most one row) with
    ``params`` and, if it wrote its row, append the event it stands for, as
    ``record`` does; None, and no event, if it wrote nothing (a
    compare-and-set that lost). On PostgreSQL one statement does both: the
    write is a WITH clause of the event's INSERT.

    ``last``, for an event that leaves its form as it was (``UNCHANGING``,
    a re-scan's): as for ``record_pair_after``, the event's number in the
    audit chain may then be taken in the same statement, after a share
    lock on the form's row; ``ends`` as for ``record_pair_after``."""
    values, around_id = _event_values(form_id, type, actor, exit_point=exit_point, at=at, data=data)
    session.flush()
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        if connection.execute(write, params).rowcount != 1:
            return None
        return _written(session, _INSERT_EVENT.execute(session, values).fetchone()[0], values, around_id)
    numbering = last and form_id is not None and type in UNCHANGING and may_number_early(session)
    return _record_by(session, _with_event(write, numbering), params, values, around_id, numbering, ends)


def event_for_each(source, *ctes, numbers: Numbers | None = None) -> HotStatement:
    """PostgreSQL: an INSERT of one event per row of ``source`` (a CTE of
    the write the event stands for) returning its id; ``ctes``, further
    writes that depend on ``source``, go in the same statement. The event's
    values are parameters (``record_by``). With ``numbers`` (whose CTEs
    ``ctes`` then include), the statement also returns the numbers they
    take, as ``record_by(..., numbering=True)`` expects."""
    event = select(*(bindparam(f"event_{name}", type_=_EVENTS.c[name].type) for name in _COLUMNS))
    returning = [_EVENTS.c.id, *(numbers.returned() if numbers is not None else ())]
    statement = insert(_EVENTS).from_select(_COLUMNS, event.select_from(source)).returning(*returning)
    for cte in (source, *ctes):
        statement = statement.add_cte(cte)
    return HotStatement(statement)


def record_by(session: Session, statement: HotStatement, params: dict, form_id: str | None, type: str,
              actor: str, *, exit_point: str | None = None, at: datetime | None = None,
              numbering: bool = False, **data) -> Written | None:
    """Run ``statement`` (made by ``event_for_each``) with ``params`` and
    the event's values; the event as written, or None if the write it stands
    for wrote nothing (then neither did the statement). ``numbering``: the
    statement was made with ``numbers`` for the form ``form_id`` and its
    one event, and the caller's transaction writes nothing else that may
    wait on a lock before it commits (``record_pair_after``'s ``last``)."""
    values, around_id = _event_values(form_id, type, actor, exit_point=exit_point, at=at, data=data)
    session.flush()
    return _record_by(session, statement, params, values, around_id, numbering)


def _record_by(session: Session, statement: HotStatement, params: dict, values: dict,
               around_id: tuple[bytes, bytes], numbering: bool = False, ends: bool = False) -> Written | None:
    row = statement.execute(session, {
        **params, **{f"event_{name}": value for name, value in values.items()}}).fetchone()
    if row is None:
        return None
    return _statement_wrote(session, [(row[0], values, around_id)], row[1:] if numbering else None, ends)[0]


def may_number_early(session: Session) -> bool:
    """Whether a write may take the transaction's numbers itself (``Numbers``):
    nothing written before it was numbered or noted for the commit, and it
    is not in a SAVEPOINT (whose numbers a rollback to it would waste)."""
    return not session.in_nested_transaction() and not changes.noted_any(session) \
        and not audit_chain.noted_any(session)


@dataclass(frozen=True)
class Numbers:
    """PostgreSQL: the CTE that takes, in a write's own statement, the next
    ``events`` numbers of a free audit chain (``audit_last``, with the
    chain's head and number), instead of at the commit. It calls
    ``take_chain_numbers`` (migration 0019). PostgreSQL runs the CTE once,
    when the write first uses a number, and only once ``after`` (a CTE that
    locks what the write depends on) has a row: the rows first, the counter
    last. None comes back if no chain is free, or has a counter row: the
    commit then numbers as usual."""

    taken: object

    @classmethod
    def after(cls, after, events: int) -> "Numbers":
        # The counter's UPDATE is the function's own statement: a write
        # that waited for the counter rechecks the counter's row alone, not
        # the whole statement (migration 0016 says why).
        taken = func.take_chain_numbers(literal_column(str(int(events))))
        columns = taken.table_valued(column("audit_last", BigInteger), column("audit_head", String),
                                     column("audit_chain", SmallInteger))
        return cls(select(columns).where(exists(select(*after.c))).cte("numbers"))

    def ctes(self) -> tuple:
        return (self.taken,)

    def returned(self) -> tuple:
        return tuple(select(taken).scalar_subquery() for taken in self.taken.c)


def record_pair_after(session: Session, write, params: dict, event: dict, then, row: dict,
                      then_event: dict, *, last: bool = False,
                      ends: bool = False) -> tuple[Written, Written] | None:
    """``record_after`` for two writes: ``write`` (as there) and, only if it
    wrote its row, ``then`` (a Core INSERT of one row, ``row`` its values),
    each with its event (``event`` and ``then_event``: record's keywords,
    ``data`` among them). A scan that gives a form its verdict writes the
    form's change and the scan row so. On PostgreSQL one statement writes
    all four rows, and the first event's outbox rows where who listens was
    read before (``webhooks.read_before_write``); None, and nothing
    written, if ``write`` wrote nothing.

    ``last``: the caller's transaction locks no other row before it commits
    (the rows it may still add, an outbox delivery or an idempotency
    record, lock none that another writer holds while it waits for the
    audit chain's counter). The counter's lock may then be taken here
    rather than at the commit, and every writer still takes rows first,
    the counter last.

    ``ends``: nor does the caller write anything after this, in this
    transaction. Where the statement took the numbers, the events are then
    linked and the transaction committed at once (``_commit_now``): the
    links go to PostgreSQL as soon as the chain's head is known, before the
    bookkeeping every write does, and every other writer waits for the
    counter until they arrive. The session's commit that follows finds
    nothing left to do."""
    (first, first_around), (second, second_around) = _event_values(**event), _event_values(**then_event)
    session.flush()
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        if connection.execute(write, params).rowcount != 1:
            return None
        written = _written(session, _INSERT_EVENT.execute(session, first).fetchone()[0], first, first_around)
        connection.execute(then, row)
        return written, _written(session, _INSERT_EVENT.execute(session, second).fetchone()[0], second,
                                 second_around)
    # The transaction's only write: the events' numbers in the audit chain
    # are taken in the same statement (one round trip less) instead of as
    # the transaction commits.
    numbering = last and may_number_early(session)
    # Where who listens was read before the write, the first event's outbox
    # rows go in the same statement too.
    outbox = webhooks.with_the_write(session, first)
    values = {**params, **{f"then_{name}": value for name, value in row.items()},
              **{f"event_{name}": value for name, value in first.items()},
              **{f"then_event_{name}": value for name, value in second.items()}}
    if outbox is not None:
        values.update(outbox_hooks=outbox.hooks, outbox_message_id=outbox.message_id, outbox_payload=outbox.body)
    rows = _with_events(write, then, tuple(row), numbering, outbox is not None).execute(session, values).fetchall()
    if not rows:
        return None
    ids = sorted(r[0] for r in rows)
    # The events were inserted in this order, so took their ids in it.
    return tuple(_statement_wrote(session, [(ids[0], first, first_around), (ids[1], second, second_around)],
                                  rows[0][1:] if numbering else None, ends, enqueue_first=outbox is None))


def _event_values(form_id: str | None, type: str, actor: str, *, exit_point: str | None = None,
                  at: datetime | None = None, data: dict) -> tuple[dict, tuple[bytes, bytes]]:
    """The event's column values, and its bytes for the chain but for its
    id (``audit_chain.as_stored``): made before the event is written."""
    values = {"form_id": form_id, "type": type, "actor": actor, "exit_point": exit_point, "data": data,
              "at": at or utcnow()}
    return values, audit_chain.as_stored(**values)


_WITH_EVENT: dict = {}


def _with_event(write, numbering: bool = False):
    """``write``, and an event row for each row it wrote: one statement,
    built once per ``write`` and ``numbering`` (PostgreSQL only).

    With ``numbering`` (one event, which leaves its form as it was), the
    statement also takes the event's number in the audit chain and returns
    it with the chain's head, as ``record_by(..., numbering=True)``
    expects; first it takes a share lock on the form's row (which the
    event's foreign key takes anyway), so that this writer too takes rows
    first and counters last."""
    key = (write, numbering)
    statement = _WITH_EVENT.get(key)
    if statement is None:
        written = write.returning(literal_column("1")).cte("written")
        if numbering:
            forms = Form.__table__
            locked = (select(forms.c.id).where(forms.c.id == bindparam("event_form_id", type_=_EVENTS.c.form_id.type))
                      .with_for_update(read=True, key_share=True).cte("locked"))
            numbers = Numbers.after(locked, events=1)
            statement = event_for_each(written, locked, *numbers.ctes(), numbers=numbers)
        else:
            statement = event_for_each(written)
        _WITH_EVENT[key] = statement
    return statement


def _with_events(write, then, names: tuple[str, ...], numbering: bool = False, outbox: bool = False):
    """``write`` (an UPDATE of the form ``form_id`` while its status is
    ``was``), then ``then`` with the columns ``names``, both only if
    ``write`` wrote its row, and their two events: one statement, built once
    per ``write``, ``then``, ``names``, ``numbering`` and ``outbox``
    (PostgreSQL only). With ``outbox``, the first event's outbox rows too
    (``webhooks.Outbox``: one per webhook in ``outbox_hooks``, with
    ``outbox_message_id`` and ``outbox_payload``, dated with the event).

    The write marks the form changed for the change feed (api/services/
    changes.py) with its other columns: no second version of its row.

    With ``numbering``, the statement also takes two numbers of the audit
    chain, returning with each event's id the chain's last number and its
    head (None if the counter has no row yet: the commit takes them then).
    The form's row is locked first (``locked``, on which the counter's
    update depends), then the counter, as every writer takes them; the
    counter does not move if the form is no longer as read."""
    key = (write, then, names, numbering, outbox)
    statement = _WITH_EVENT.get(key)
    if statement is None:
        ctes = []
        returning = [_EVENTS.c.id]
        write = write.values(change_seq=changes.MARKING)
        if numbering:
            forms = Form.__table__
            locked = (select(forms.c.id)
                      .where(forms.c.id == bindparam("form_id"), forms.c.status == bindparam("was"))
                      .with_for_update(key_share=True).cte("locked"))
            numbers = Numbers.after(locked, events=2)
            # The write waits for the numbers, so that ``locked`` runs
            # first: run after the write, it would find the form's row
            # already updated by this statement and skip it.
            write = write.where(exists(select(*numbers.taken.c)))
            ctes = [locked, *numbers.ctes()]
            returning += numbers.returned()
        written = write.returning(literal_column("1")).cte("written")
        table = then.table
        then_row = select(*(bindparam(f"then_{name}", type_=table.c[name].type) for name in names))
        then_written = insert(table).from_select(names, then_row.select_from(written)).cte("then_written")
        events = union_all(*(
            select(*(bindparam(f"{prefix}{name}", type_=_EVENTS.c[name].type) for name in _COLUMNS))
            .select_from(written) for prefix in ("event_", "then_event_")))
        statement = insert(_EVENTS).from_select(_COLUMNS, events).returning(*returning)
        if outbox:
            # The events' INSERT becomes a WITH clause whose ids the outbox's
            # INSERT reads (the first event's is the lower: inserted first).
            inserted = statement.cte("inserted")
            ctes.append(inserted)
            ctes.append(webhooks.outbox_insert(
                select(func.min(inserted.c.id)).scalar_subquery(),
                bindparam("event_type", type_=_EVENTS.c.type.type),
                bindparam("event_at", type_=_EVENTS.c.at.type)).cte("outbox"))
            statement = select(*inserted.c)
        for cte in (*ctes, written, then_written):
            statement = statement.add_cte(cte)
        statement = _WITH_EVENT[key] = HotStatement(statement)
    return statement


@dataclass(frozen=True, slots=True)
class Written:
    """An event as it was written: the row's values, not an ORM object (an
    Event the session tracked would cost more to make than to write)."""

    id: int
    form_id: str | None
    type: str
    actor: str
    exit_point: str | None
    data: dict
    at: datetime


def _statement_wrote(session: Session, events: list[tuple[int, dict, tuple[bytes, bytes]]],
                     numbers: tuple | None, ends: bool, *, enqueue_first: bool = True) -> list[Written]:
    """``events`` (id, values, ``as_stored`` bytes), just written by one
    statement, as written; ``numbers`` (a chain's last number, its head and
    the chain) if that statement took the transaction's numbers, and then
    also marked the first event's form changed, unless the event leaves it
    as it was. With
    ``ends``, and the chain's numbers taken, linked and committed at once
    (``_commit_now``); else noted for the commit (``_written``,
    ``_taken_early``). ``enqueue_first`` false: the statement wrote the
    first event's outbox rows."""
    if numbers is not None:
        audit_last, head, chain = numbers
        first = events[0][1]
        marked = [first["form_id"]] if first["form_id"] is not None and first["type"] not in UNCHANGING else []
        if ends and audit_last is not None:
            return _commit_now(session, events, marked, audit_last, head, chain, enqueue_first=enqueue_first)
    written = [_written(session, event_id, values, around_id, enqueue=enqueue_first or n > 0)
               for n, (event_id, values, around_id) in enumerate(events)]
    if numbers is not None:
        _taken_early(session, marked, audit_last, head, chain, len(written))
    return written


def _written(session: Session, event_id: int, values: dict, around_id: tuple[bytes, bytes], *,
             enqueue: bool = True) -> Written:
    """An event just written: noted for the chain, the change feed and the
    outbox (unless ``enqueue`` is false: its statement wrote its outbox
    rows)."""
    event = Written(event_id, **values)
    audit_chain.note_written(session, event_id, around_id)
    if event.form_id is not None and event.type not in UNCHANGING:
        changes.note(session, event.form_id)
    if enqueue:
        _enqueue(session, event)
    return event


def _enqueue(session: Session, event: Written) -> None:
    if event.form_id is not None and event.type in webhooks.EVENT_TYPES:
        webhooks.enqueue(session, event)


def _commit_now(session: Session, events: list[tuple[int, dict, tuple[bytes, bytes]]], marked: list[str],
                audit_last: int, head: str | None, chain: int, *, enqueue_first: bool = True) -> list[Written]:
    """PostgreSQL: ``events`` (id, values, ``as_stored`` bytes), written by
    the statement that took the transaction's numbers (chain ``chain``'s up
    to ``audit_last`` after ``head``) and marked the forms ``marked``
    changed, and nothing written after them: link them and commit now. What the commit would have done is done here (the
    events' outbox rows before the links, but the first event's where its
    statement wrote them: ``enqueue_first`` false), and the commit that
    follows checks that nothing was written since (``_number_and_link``)."""
    written = [Written(event_id, **values) for event_id, values, _ in events]
    for event in written if enqueue_first else written[1:]:
        _enqueue(session, event)
    audit_chain.link_and_commit(session, _chain_key(session),
                                [(event_id, audit_chain.with_id(around_id, event_id))
                                 for event_id, _, around_id in events], audit_last, head, chain)
    session.info[_COMMITTED] = session.get_transaction()
    changes.marked(session, marked)
    return written


# --- what happens as a transaction commits ------------------------------------
# Every event is linked into the chain, however it was added (audit.record or
# a plain session.add): the events audit.record and each flush wrote are
# noted per transaction, dropped with a rolled-back SAVEPOINT or
# transaction, and linked when the transaction commits.


@sqlalchemy_event.listens_for(Session, "after_flush")
def _note_events(session, _flush_context) -> None:
    audit_chain.note_flushed(session, session.new)


@sqlalchemy_event.listens_for(Session, "after_rollback")
def _forget_events(session) -> None:
    audit_chain.forget_rolled_back(session)


@sqlalchemy_event.listens_for(Session, "after_transaction_end")
def _hand_up_events(session, transaction) -> None:
    audit_chain.hand_up_or_forget(session, transaction)


@sqlalchemy_event.listens_for(Session, "before_commit")
def _number_and_link(session) -> None:
    """The last writes before COMMIT: the changed forms marked for the
    change feed (api/services/changes.py), then the events' links in an
    audit chain, under its counter's row lock held until the commit. On
    PostgreSQL the links go with the COMMIT itself: this listener must stay
    the only ``before_commit`` one, as nothing may write after it."""
    if session.in_nested_transaction():
        return
    if session.info.pop(_COMMITTED, None) is session.get_transaction():
        # Linked and committed with its last write (_commit_now): anything
        # written since would be in a transaction of its own.
        if session.new or session.dirty or session.deleted or changes.noted_any(session) \
                or audit_chain.noted_any(session):
            raise RuntimeError("written after the transaction's last write committed it")
        return
    session.flush()
    early = session.info.pop(_TAKEN_EARLY, None)
    if early is not None and early[0] is not session.get_transaction():
        early = None  # left by a transaction that rolled back
    marked, taken = early[1:] if early is not None else ((), None)
    form_ids = [form_id for form_id in changes.noted(session) if form_id not in marked]
    events = audit_chain.noted(session)
    if not form_ids and not events:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The numbers the transaction's first write took (_taken_early) are
        # the first of its own: it holds the counter's lock since, so the
        # rest follow them.
        audit_last, head, chain, more = None, None, None, len(events)
        if taken is not None:
            audit_last, head, chain, count = taken
            more -= count
            if more < 0:
                raise RuntimeError("more audit numbers taken than events to link")
        if form_ids or more:
            # One round trip for the marks and the chain's numbers (the
            # function of migration 0019): of the chain the transaction
            # holds, if it took one early.
            last, head_now, chain_now = _TAKE_COMMIT_NUMBERS.execute(
                session, {"form_ids": form_ids, "events": more, "chain": chain}).fetchone()
            changes.marked(session, form_ids)
            if more:
                audit_last, chain = last, chain_now
                head = head if taken is not None else head_now
        if events:
            # The transaction's last statement, with its COMMIT: SQLAlchemy's
            # own COMMIT after this hook finds nothing left to commit.
            audit_chain.link_and_commit(session, _chain_key(session), events, audit_last, head, chain)
        return
    if form_ids:
        changes.mark(session, form_ids)
    if events:
        audit_chain.append(session, _chain_key(session), events)


_TAKEN_EARLY = "commit_numbers_taken_early"
_COMMITTED = "committed_with_its_last_write"


def _taken_early(session: Session, marked: list[str], audit_last: int | None, head: str | None,
                 chain: int | None, events: int) -> None:
    """The transaction's first write marked the forms ``marked`` changed
    and took ``events`` numbers of audit chain ``chain`` up to
    ``audit_last`` (its head then ``head``): kept for the commit
    (``_number_and_link``), which links the events and marks and numbers
    anything written after. None: no chain was free or had a counter row,
    and the commit takes the numbers as usual."""
    changes.marked(session, marked)
    session.info[_TAKEN_EARLY] = (session.get_transaction(), frozenset(marked),
                                  None if audit_last is None else (audit_last, head, chain, events))


_TAKE_COMMIT_NUMBERS = HotStatement(text(
    "SELECT audit_last, audit_head, audit_chain FROM "
    "mark_forms_take_chain_numbers(CAST(:form_ids AS text[]), :events, CAST(:chain AS smallint))"))


def _chain_key(session: Session) -> bytes:
    key = session.info.get("audit_chain_key")
    if key is None and has_app_context():
        key = current_app.config["AUDIT_CHAIN_KEY"].encode()
    if key is None:
        raise RuntimeError("no AUDIT_CHAIN_KEY for this session: use the app's sessions (api.database)")
    return key
