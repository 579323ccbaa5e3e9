"""The audit trail's hash chains: tampering with the events shows.

Every event gets a link in ``audit_links``, in one chain: the chain's next
number (1, 2, 3 ... without gaps, in the order transactions commit) and

    hash(n) = HMAC-SHA256(AUDIT_CHAIN_KEY, hash(n-1) || canonical(event n))

with hash(0) = 64 zeros, hash(n-1) the chain's link before. ``canonical``
is JSON (sorted keys, fixed separators, ASCII) of the event's stored
fields, so the hash is the same whether the event is read back from SQLite
or PostgreSQL. The key lives outside the database: someone who can write to
the database can still edit, delete or add rows (dropping the append-only
triggers first), but cannot make a chain that verifies again. ``verify``
walks every chain and names the first link that does not hold; an event no
link seals is named too.

A chain's numbers are taken from its counter row (``change_counters``,
``audit`` for chain 0, ``audit.N`` for chain N) updated as the last thing
before the transaction commits, whose row lock orders that chain's
writers, so its link n+1 is written by a transaction that saw link n
committed. The row also holds the chain's head (the newest link's hash),
read in the statement that takes the numbers: under the lock, PostgreSQL
gives that statement the row as the previous writer committed it, where a
new statement would be needed to see the previous writer's link. (On
PostgreSQL a transaction whose only write is one form's, a lone verdict,
re-scan or issue, takes its numbers in that write's own statement instead:
``audit.Numbers``.)

Why several chains (PostgreSQL, migration 0019): a writer holds its
chain's counter until its links commit, one round trip to its worker after
taking it (the links need the key, which the database never sees), and
writers of one chain queue for it. So a writer takes the first chain no
other transaction holds (``FOR UPDATE SKIP LOCKED``), and only with every
chain held waits, for chain 0. SQLite has one writer at a time and keeps
to chain 0. A transaction holds one chain at most and takes it as the
last thing it locks (the hook that marks changed forms for the change
feed, in the same listener in api/services/audit.py, takes no counter), so
two writers never wait for each other in a cycle.

What a chain cannot show on its own is a trail cut short at its end (its
newest links and events removed, its counter set back): each chain's head
(seq and hash) noted somewhere else catches that (``verify-audit
--expect-head``, once per chain).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import BigInteger, String, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from .. import database
from ..models import AuditLink, ChangeCounter, Event

COUNTER = "audit"
ZERO = "0" * 64
_KEY = "events_to_link"

# --- the hash ---------------------------------------------------------------


def canonical(id: int, form_id: str | None, type: str, actor: str, exit_point: str | None,
              data, at: datetime) -> bytes:
    """The event's stored fields as the bytes the chain seals."""
    return with_id(canonical_around_id(form_id, type, actor, exit_point, data, at), id)


def with_id(around_id: tuple[bytes, bytes], id: int) -> bytes:
    """``canonical`` from ``canonical_around_id`` and the event's id."""
    before, after = around_id
    return before + b"%d" % id + after


_JSON = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": True}


def canonical_around_id(form_id: str | None, type: str, actor: str, exit_point: str | None,
                        data, at: datetime) -> tuple[bytes, bytes]:
    """``canonical`` but for the event's id: the bytes before it and after
    it. The JSON of every field, keys sorted, which puts ``id`` between
    ``form_id`` and ``type``, the last key. An event written with a plain
    INSERT gets its id from the database; its bytes are made before, so that
    the commit, holding the chain's counter, waits for no JSON."""
    fields = json.dumps({"actor": actor, "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
                         "data": data, "exit_point": exit_point, "form_id": form_id}, **_JSON)
    return (fields[:-1] + ',"id":').encode(), (',"type":' + json.dumps(type, **_JSON) + "}").encode()


def link_hash(key: bytes, previous: str, event: bytes) -> str:
    return hmac.new(key, previous.encode() + event, hashlib.sha256).hexdigest()


def as_stored(form_id: str | None, type: str, actor: str, exit_point: str | None, data,
              at: datetime) -> tuple[bytes, bytes]:
    """``canonical_around_id`` of an event about to be written, from the
    values in memory made equal to what the database gives back: JSON turns
    tuples into lists and keys into strings."""
    return canonical_around_id(form_id, type, actor, exit_point, json.loads(json.dumps(data)), at)


def _as_stored(event) -> bytes:
    """``canonical`` of an event object the ORM just flushed."""
    return with_id(as_stored(event.form_id, event.type, event.actor, event.exit_point, event.data, event.at),
                   event.id)


# --- linking, as transactions commit ------------------------------------------


def _current(session: Session):
    return session.get_nested_transaction() or session.get_transaction()


def note_flushed(session: Session, flushed: Iterable) -> None:
    """Remember the events among ``flushed`` (written by this flush) for the
    transaction they were written in: sealed as they were written, whatever
    happens to the objects in memory afterwards."""
    events = [(obj.id, _as_stored(obj)) for obj in flushed if isinstance(obj, Event)]
    if events:
        session.info.setdefault(_KEY, {}).setdefault(_current(session), []).extend(events)


def note_written(session: Session, event_id: int, around_id: tuple[bytes, bytes]) -> None:
    """Remember an event written with a plain INSERT (``audit.record``'s
    ``Written``), given its id and its ``as_stored`` bytes, as
    ``note_flushed`` does those the ORM flushed."""
    session.info.setdefault(_KEY, {}).setdefault(_current(session), []).append(
        (event_id, with_id(around_id, event_id)))


def forget_rolled_back(session: Session) -> None:
    """Drop the events of the transaction or SAVEPOINT just rolled back (an
    ``after_rollback`` hook: it runs while that one is still the current
    transaction, before its end would hand its events up)."""
    session.info.get(_KEY, {}).pop(_current(session), None)


def hand_up_or_forget(session: Session, transaction) -> None:
    noted = session.info.get(_KEY)
    if not noted:
        return
    events = noted.pop(transaction, None)
    if events and transaction.nested and transaction.parent is not None:
        # A released SAVEPOINT's events belong to the enclosing transaction.
        noted.setdefault(transaction.parent, []).extend(events)
    if transaction.parent is None:
        noted.clear()


def noted_any(session: Session) -> bool:
    """Whether the session's transaction has written any event yet."""
    return any(session.info.get(_KEY, {}).values())


def noted(session: Session) -> list[tuple[int, bytes]]:
    """The events the committing transaction wrote, oldest first, forgotten
    here: to be linked by the one ``before_commit`` listener
    (api/services/audit.py). The caller has flushed."""
    noted = session.info.get(_KEY)
    if not noted:
        return []
    events = sorted(event for written in noted.values() for event in written)
    noted.clear()
    return events


def _take_numbers() -> object:
    """SQLite: ``n`` more numbers of the chain's counter, returning the last
    and the chain's head (the hash of the link before the first of them):
    one statement, built once (every commit with events runs it). On
    PostgreSQL the function ``mark_forms_take_chain_numbers`` (migration
    0018) or the write's own statement (``audit.Numbers``) takes them."""
    counters, links, n = ChangeCounter.__table__, AuditLink.__table__, bindparam("n", type_=BigInteger)
    # The first number ever (or after the counter row was lost) follows the
    # highest link there is.
    start = select(func.coalesce(func.max(links.c.seq), 0) + n).scalar_subquery()
    newest = select(links.c.hash).order_by(links.c.seq.desc()).limit(1).scalar_subquery()
    return (sqlite.insert(counters).values(name=COUNTER, value=start, head_hash=newest)
            .on_conflict_do_update(index_elements=[counters.c.name], set_={"value": counters.c.value + n})
            .returning(counters.c.value, counters.c.head_hash))


_TAKE = _take_numbers()
_HASH_OF = select(AuditLink.__table__.c.hash).where(AuditLink.__table__.c.chain == bindparam("chain"),
                                                    AuditLink.__table__.c.seq == bindparam("seq"))
_LINK = insert(AuditLink.__table__)
_COUNTERS = ChangeCounter.__table__
_NEW_HEAD = (update(_COUNTERS).where(_COUNTERS.c.name == COUNTER)
             .values(head_hash=bindparam("head", type_=String)))


def append(session: Session, key: bytes, events: list[tuple[int, bytes]]) -> int:
    """SQLite: seal ``events`` (id, canonical bytes) with the next links of
    the chain; returns the last seq. The counter's row lock is held until
    the transaction ends (PostgreSQL: ``link_and_commit``)."""
    # Core statements on the session's connection: no ORM work on a path
    # every write takes.
    connection = session.connection()
    last, head = connection.execute(_TAKE, {"n": len(events)}).one()
    rows, head = _sealed(connection, key, events, last, head)
    connection.execute(_LINK, rows)
    connection.execute(_NEW_HEAD, {"head": head})
    return last


def link_and_commit(session: Session, key: bytes, events: list[tuple[int, bytes]], last: int,
                    head: str | None, chain: int) -> None:
    """PostgreSQL: seal ``events`` with the links of chain ``chain``
    numbered up to ``last``, taken (with its counter's row lock) when the
    chain's head was ``head``, and commit. The links and the new head
    (``link_events``, migration 0019) are the transaction's last statement
    and go to the server in one message with its COMMIT
    (``database.execute_then_commit``): the chain's next writer waits for
    the counter's lock, and this lets it go one round trip sooner than a
    separate COMMIT would."""
    rows, _ = _sealed(session.connection(), key, events, last, head, chain)
    # Written into the statement: the protocol that carries a COMMIT with
    # it takes no parameters. Numbers and hex digests this function made,
    # checked all the same (the head it started from was read from the
    # database, but only a digest of it is written). The last link's hash
    # is the new head.
    seqs = ",".join(str(int(row["seq"])) for row in rows)
    ids = ",".join(str(int(row["event_id"])) for row in rows)
    hashes = ",".join(_digest(row["hash"]) for row in rows)
    database.execute_then_commit(
        session, f"SELECT link_events({int(chain)}::smallint, '{{{seqs}}}', '{{{ids}}}', '{{{hashes}}}')")


def _sealed(connection, key: bytes, events: list[tuple[int, bytes]], last: int,
            head: str | None, chain: int = 0) -> tuple[list[dict], str]:
    """The links of ``events`` in chain ``chain``, numbered up to ``last``,
    after the chain's head ``head`` (read under its counter's lock, so the
    link it names is committed by now); and the new head."""
    first = last - len(events) + 1
    previous = ZERO if first == 1 else head
    if previous is None:
        # A counter row without its head (restored by hand): the link before.
        previous = connection.execute(_HASH_OF, {"chain": chain, "seq": first - 1}).scalar()
    if previous is None:
        # The link before is gone (removed by hand): keep recording, from the
        # zero hash; verify-audit reports the gap.
        previous = ZERO
    rows = []
    for seq, (event_id, stored) in enumerate(events, start=first):
        previous = link_hash(key, previous, stored)
        rows.append({"chain": chain, "seq": seq, "event_id": event_id, "hash": previous})
    return rows, previous


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError("a link's hash is 64 hex digits")
    return value


# --- verifying ----------------------------------------------------------------

EVENT_COLUMNS = (Event.id, Event.form_id, Event.type, Event.actor, Event.exit_point, Event.data, Event.at)


def _canonical_row(row) -> bytes:
    return canonical(row.id, row.form_id, row.type, row.actor, row.exit_point, row.data, row.at)


@dataclass(frozen=True)
class Break:
    """The first place where a chain does not hold."""

    seq: int
    event_id: int | None
    what: str
    chain: int = 0

    def __str__(self) -> str:
        event = f"event {self.event_id}" if self.event_id is not None else "event unknown"
        where = f"seq {self.seq}" if self.chain == 0 else f"chain {self.chain} seq {self.seq}"
        return f"{where} ({event}): {self.what}"


@dataclass(frozen=True)
class Head:
    """A chain's newest link, as ``verify-audit --expect-head`` takes it:
    ``SEQ:HASH`` for chain 0, ``CHAIN/SEQ:HASH`` for the others."""

    chain: int
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}" if self.chain == 0 else f"{self.chain}/{self.seq}:{self.hash}"


@dataclass(frozen=True)
class Report:
    links: int  # links that verified, in every chain
    heads: tuple[Head, ...]  # each chain's, as far as it verified; chain 0 first
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None

    @property
    def head_seq(self) -> int:
        return self.heads[0].seq

    @property
    def head_hash(self) -> str:
        return self.heads[0].hash


def chain_of(counter: str) -> int | None:
    """The chain whose counter row is named ``counter`` (``audit`` is chain
    0, ``audit.N`` chain N; migration 0019), or None."""
    if counter == COUNTER:
        return 0
    prefix, dot, number = counter.partition(".")
    return int(number) if prefix == COUNTER and dot and number.isdigit() else None


def _links_after(session: Session, chain: int, after: int, limit: int):
    return session.execute(
        select(AuditLink.seq, AuditLink.event_id, AuditLink.hash, *EVENT_COLUMNS)
        .join(Event, Event.id == AuditLink.event_id, isouter=True)
        .where(AuditLink.chain == chain, AuditLink.seq > after).order_by(AuditLink.seq).limit(limit)
    ).all()


def _mismatch(key: bytes, row, expected: str, following) -> str:
    """What a link whose hash does not match its event most likely means,
    judged by the link after it, which sealed whatever link n held when it
    was written."""
    if following is None or following.seq != row.seq + 1 or following.id is None:
        return "hash mismatch: the event or its link was changed after it was written"
    after = _canonical_row(following)
    if link_hash(key, row.hash, after) == following.hash:
        return "event content changed after it was linked"
    if link_hash(key, expected, after) == following.hash:
        return "link hash altered (the event is as it was written)"
    return "hash mismatch: the event or its link was changed after it was written"


def verify(session: Session, key: bytes, *, batch: int = 2000, expect_heads: Iterable[Head] = ()) -> Report:
    """Walk every chain from seq 1 in batches of ``batch`` links,
    recomputing every hash; the first break, if any. Memory stays flat
    however long the trail is."""
    # Numbers given out before the walk starts all have committed links.
    given = {chain: value for chain, value in (
        (chain_of(name), value) for name, value in session.execute(select(ChangeCounter.name, ChangeCounter.value))
    ) if chain is not None}
    chains = sorted({0, *given, *session.scalars(select(AuditLink.chain).distinct())})
    heads, links, broken = [], 0, None
    for chain in chains:
        head, chain_broken = _walk(session, key, chain, batch, given.get(chain) or 0)
        heads.append(head)
        links += head.seq
        broken = broken or chain_broken
    unlinked = _first_unlinked(session)
    if unlinked is not None and (broken is None or (unlinked.chain == broken.chain and unlinked.seq < broken.seq)):
        broken = unlinked
    for expected in expect_heads if broken is None else ():
        broken = _check_head(session, expected, {head.chain: head.seq for head in heads})
        if broken is not None:
            break
    return Report(links, tuple(heads), broken)


def _walk(session: Session, key: bytes, chain: int, batch: int, given: int) -> tuple[Head, Break | None]:
    """One chain: its head as far as it verified, and its first break."""
    previous, expected_seq, last_event = ZERO, 1, None
    broken = None
    rows = _links_after(session, chain, 0, batch)
    while rows and broken is None:
        for i, row in enumerate(rows):
            if row.seq != expected_seq:
                around = f"after event {last_event}" if last_event is not None else "at the start"
                broken = Break(expected_seq, None,
                               f"link missing: the chain jumps from seq {expected_seq - 1} to {row.seq} "
                               f"({around}); links and events were removed", chain)
                break
            if row.id is None:
                broken = Break(row.seq, row.event_id, "event deleted: the link's event is gone", chain)
                break
            stored = _canonical_row(row)
            expected = link_hash(key, previous, stored)
            if not hmac.compare_digest(expected, row.hash):
                following = rows[i + 1] if i + 1 < len(rows) else next(
                    iter(_links_after(session, chain, row.seq, 1)), None)
                broken = Break(row.seq, row.event_id, _mismatch(key, row, expected, following), chain)
                break
            previous, expected_seq, last_event = row.hash, row.seq + 1, row.event_id
        else:
            rows = _links_after(session, chain, rows[-1].seq, batch)
    head = Head(chain, expected_seq - 1, previous)
    if broken is None and head.seq < given:
        broken = Break(head.seq + 1, None,
                       f"link missing: {given} links were made but the chain ends at seq {head.seq}; "
                       f"the newest links were removed", chain)
    return head, broken


def _first_unlinked(session: Session) -> Break | None:
    """An event no link seals (added by hand, past the application)."""
    linked = exists().where(AuditLink.event_id == Event.id)
    event_id = session.scalar(select(func.min(Event.id)).where(~linked))
    if event_id is None:
        return None
    count = session.scalar(select(func.count()).select_from(Event).where(~linked))
    # Where it sits: after the link of the newest event older than it.
    after = session.execute(select(AuditLink.chain, AuditLink.seq).where(AuditLink.event_id < event_id)
                            .order_by(AuditLink.event_id.desc()).limit(1)).first()
    chain, seq = after if after is not None else (0, 0)
    more = f" ({count} such events)" if count > 1 else ""
    return Break(seq + 1, event_id, f"event not linked: no link seals this event{more}; "
                                    f"it was added past the application", chain)


def _check_head(session: Session, expected: Head, heads: dict[int, int]) -> Break | None:
    stored = session.scalar(select(AuditLink.hash).where(AuditLink.chain == expected.chain,
                                                          AuditLink.seq == expected.seq))
    if stored is None:
        return Break(expected.seq, None, f"the noted head is gone: the chain now ends at seq "
                                         f"{heads.get(expected.chain, 0)}; the newest links were removed",
                     expected.chain)
    if not hmac.compare_digest(stored, expected.hash.lower()):
        event_id = session.scalar(select(AuditLink.event_id).where(AuditLink.chain == expected.chain,
                                                                   AuditLink.seq == expected.seq))
        return Break(expected.seq, event_id, f"link {expected.seq} is not the noted head: its hash is {stored}",
                     expected.chain)
    return None


# --- existing events (the migration that brings in the chain) -----------------


def link_existing(connection, key: bytes, events_table, links_table, counters_table, batch: int = 5000) -> int:
    """Link every event of a database that had none, in id order, a batch
    at a time; returns how many. ``events_table`` must read ``data`` and
    ``at`` with the application's types, so the hashes match verify's."""
    previous, seq, after = ZERO, 0, 0
    while True:
        rows = connection.execute(
            select(events_table).where(events_table.c.id > after).order_by(events_table.c.id).limit(batch)
        ).all()
        if not rows:
            break
        links = []
        for row in rows:
            seq += 1
            previous = link_hash(key, previous, _canonical_row(row))
            links.append({"seq": seq, "event_id": row.id, "hash": previous})
        connection.execute(links_table.insert(), links)
        after = rows[-1].id
    if seq:
        # (Without events the first link makes the counter row.)
        connection.execute(counters_table.insert().values(name=COUNTER, value=seq))
    return seq
