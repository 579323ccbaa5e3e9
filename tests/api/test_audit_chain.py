"""The audit trail is tamper-evident: every event is chained to the one
before by a keyed hash, and ``flask --app api verify-audit`` names the first
link that does not hold. Tampering is done as a database superuser would:
with the append-only triggers out of the way, straight in SQL."""
from __future__ import annotations

import json
import re
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import bindparam, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from api import database
from api.cli import migrate
from api.migrations import alembic_config
from api.models import AuditLink, ChangeCounter, Event, ExitPoint, Form, utcnow
from api.problems import MEDIA_TYPE as PROBLEM
from api.services import audit, audit_chain, changes, scans
from shared import formid
from tests.api.test_concurrency import all_at_once, bearer
from tests.api.traveller_support import app_world, coat  # noqa: F401 (a fixture)
from tests.builders import form_body, in_time, item, scanning_as, statements_of, traveller
from tests.conftest import BACKENDS

INTACT = re.compile(r"^audit trail intact: (\d+) events, head seq (\d+) hash ([0-9a-f]{64})$", re.M)
BROKEN = re.compile(r"^audit trail broken at seq (\d+) \((?:event (\d+)|event unknown)\): (.+)$", re.M)


# --- helpers ------------------------------------------------------------------

def verify(runner, *args):
    """verify-audit's exit code and what it printed."""
    result = runner.invoke(args=["verify-audit", *args])
    return result.exit_code, result.output


def intact(runner, *args) -> tuple[int, int, str]:
    """Events, head seq and head hash of a trail that verifies."""
    code, output = verify(runner, *args)
    assert code == 0, output
    events, seq, digest = INTACT.search(output).groups()
    return int(events), int(seq), digest


def broken(runner, *args) -> tuple[int, int | None, str]:
    """Seq, event id and what is wrong at the first broken link."""
    code, output = verify(runner, *args)
    assert code == 1, output
    seq, event_id, what = BROKEN.search(output).groups()
    return int(seq), int(event_id) if event_id else None, what


def busy_day(world) -> list[str]:
    """Every kind of event through the API: issue, scans and a re-scan, the
    desk and a decision, a refund, a cancellation, a batch, a rejection."""
    plain = world.issue("shop", traveller=traveller(passport_number="P0000001"))
    watch = world.issue("shop", item(60500, category="watches"), traveller=traveller(passport_number="P0000002"))
    ring = world.issue("shop", item(70500, category="jewellery"), traveller=traveller(passport_number="P0000003"))
    cancelled = world.issue("shop", traveller=traveller(passport_number="P0000004"))
    for qr in (plain["qr_payload"], plain["qr_payload"], watch["qr_payload"], ring["qr_payload"]):
        assert world.scan("kiosk", qr).status_code == 200
    r = world.post("officer", f"/api/v1/forms/{watch['id']}/decision",
                   {"outcome": "validated", "lines": [{"line": 1, "present": True}]})
    assert r.status_code == 200, r.get_json()
    r = world.post("officer", f"/api/v1/forms/{ring['id']}/decision",
                   {"outcome": "rejected", "reason_code": "other", "note": "Ring not shown"})
    assert r.status_code == 200, r.get_json()
    r = world.post("shop", f"/api/v1/forms/{plain['id']}/refund",
                   {"amount_cents": 1890, "paid_at": "2026-12-01T10:00:00+00:00"})
    assert r.status_code == 200, r.get_json()
    assert world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel").status_code == 200
    r = world.post("refunds", "/api/v1/forms/batch", {"forms": [
        form_body(invoice=f"BATCH-{n}", retailer_vat="NL859559001B01",
                  traveller=traveller(passport_number=f"B000000{n}")) for n in range(3)]})
    assert r.status_code == 200 and {i["status"] for i in r.get_json()["items"]} == {201}
    return [plain["id"], watch["id"], ring["id"], cancelled["id"]]


def count(app, statement):
    with app.app_context():
        return database.session().scalar(statement)


def link_of(app, event_id: int) -> int:
    return count(app, select(AuditLink.seq).where(AuditLink.event_id == event_id))


def event_at(app, seq: int) -> int:
    return count(app, select(AuditLink.event_id).where(AuditLink.seq == seq))


def counters_free(connection) -> bool:
    """PostgreSQL: whether the counters' rows can be locked at once from
    ``connection`` (no transaction holds them); its transaction is rolled
    back."""
    try:
        connection.execute(text("SELECT name FROM change_counters FOR UPDATE NOWAIT")).all()
        return True
    except DBAPIError:
        return False
    finally:
        connection.rollback()


@contextmanager
def as_superuser(app):
    """One transaction with the append-only triggers out of the way, as a
    database superuser (or the tables' owner) can do; they are back when it
    commits. A connection of its own, without the app's SQLite pragmas, so
    foreign keys are not enforced there either."""
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                for table in ("events", "audit_links"):
                    conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
                yield conn
                for table in ("events", "audit_links"):
                    conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
            else:
                triggers = conn.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name IN ('events', 'audit_links')")).all()
                for name, _sql in triggers:
                    conn.execute(text(f"DROP TRIGGER {name}"))
                yield conn
                for _name, sql in triggers:
                    conn.execute(text(sql))
    finally:
        engine.dispose()


# --- the bytes an event is sealed by ----------------------------------------------

def test_an_events_bytes_are_its_fields_as_json_with_sorted_keys():
    """The format every link ever made depends on: pinned, byte for byte."""
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    data = {"b": [1, None, 2.5], "a": "é 中", "nested": {"type": "x", "id": 3}}
    assert audit_chain.canonical(12345, "F1", "form.scanned", "device:x", "AMS", data, at) == (
        b'{"actor":"device:x","at":"2026-01-02T01:04:05.000006+00:00","data":{"a":"\\u00e9 \\u4e2d",'
        b'"b":[1,null,2.5],"nested":{"id":3,"type":"x"}},"exit_point":"AMS","form_id":"F1","id":12345,'
        b'"type":"form.scanned"}')
    for id, form_id, exit_point, data in ((1, None, None, {}), (10**15, "F2", "RTM", {"type": "a", "id": [{}]}),
                                          (7, "F3", None, {"quote": '","type":"x"}', "n": -0.0})):
        whole = {"id": id, "form_id": form_id, "type": "form.validated", "actor": "user:1", "exit_point": exit_point,
                 "data": data, "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds")}
        assert audit_chain.canonical(id, form_id, "form.validated", "user:1", exit_point, data, at) == json.dumps(
            whole, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def test_an_event_about_to_be_written_is_sealed_as_the_database_will_give_it_back():
    """Made before the event has its id, and from values that JSON changes
    (a tuple, a number as a key): the same bytes as the stored row's."""
    at = datetime(2026, 11, 28, 10, 0, 0, 7, tzinfo=timezone.utc)
    data = {"lines": (1, 2), 3: "three"}
    before, after = audit_chain.as_stored("F1", "form.checked", "user:2", "AMS", data, at)
    as_read_back = json.loads(json.dumps(data))
    assert before + b"42" + after == audit_chain.canonical(42, "F1", "form.checked", "user:2", "AMS", as_read_back, at)


# --- an honest trail ------------------------------------------------------------

def test_a_busy_day_verifies_and_every_event_has_the_next_link(app, world, runner, figures):
    busy_day(world)
    result = runner.invoke(args=["expire-forms"])
    assert result.exit_code == 0, result.output

    events, head_seq, head_hash = intact(runner)

    total = count(app, select(func.count()).select_from(Event))
    assert events == head_seq == total >= 18
    with app.app_context():
        session = database.session()
        seqs = session.scalars(select(AuditLink.seq).order_by(AuditLink.seq)).all()
        assert seqs == list(range(1, total + 1))
        assert session.scalar(select(AuditLink.hash).where(AuditLink.seq == head_seq)) == head_hash
        counter = session.get(ChangeCounter, "audit")
        # The counter's row holds the head the next link chains to.
        assert (counter.value, counter.head_hash) == (head_seq, head_hash)
        # The officer's note stays with the check, not in the unchangeable trail.
        notes = session.scalars(select(Event.data).where(Event.type == "form.rejected")).all()
        assert [{k: v for k, v in data.items() if k != "duty"} for data in notes] == [
            {"by": "officer", "reason_code": "other", "has_note": True, "lines": [], "validated_total_cents": None}]
    figures(events=total, links=len(seqs), broken_links_found=0)


def test_hashes_match_the_values_as_read_back_by_a_fresh_connection(app, world, runner):
    """What the writer sealed (values in memory) is what verify reads back,
    on either database: text beyond ASCII, nested JSON, floats, tuples,
    microseconds, a time given in another time zone."""
    before = count(app, select(func.count()).select_from(Event))  # the world's setting up
    form = world.issue("shop")
    amsterdam = timezone(timedelta(hours=1))
    with app.app_context():
        session = database.session()
        audit.record(session, form["id"], "form.scanned", "device:x", exit_point="AMS",
                     at=datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=amsterdam),
                     verdict="validated", note_ar="تم التحقق", note_zh="已验证", ratio=0.1, big=2**53 + 1,
                     nested={"b": [1, {"z": None, "a": True}], "a": ("x", "y")}, empty={})
        audit.record(session, None, "system.note", "system", at=utcnow().replace(microsecond=999999))
        session.commit()

    # A connection that never saw the objects above reads and recomputes.
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(AuditLink.seq, AuditLink.hash, *audit_chain.EVENT_COLUMNS)
                                .join(Event, Event.id == AuditLink.event_id).order_by(AuditLink.seq)).all()
    finally:
        engine.dispose()
    key = app.config["AUDIT_CHAIN_KEY"].encode()
    previous = audit_chain.ZERO
    for row in rows:
        stored = audit_chain.canonical(row.id, row.form_id, row.type, row.actor, row.exit_point, row.data, row.at)
        assert audit_chain.link_hash(key, previous, stored) == row.hash, row.seq
        previous = row.hash
    assert rows[-2].at == datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=timezone.utc)
    assert rows[-2].data["nested"]["a"] == ["x", "y"]
    # The form issued and the two above.
    assert intact(runner)[0] == len(rows) == before + 3


def test_a_rolled_back_transaction_or_savepoint_leaves_no_link_and_no_change_number(app, world, runner):
    before = count(app, select(func.count()).select_from(Event))  # the world's setting up
    form, other = world.issue("shop"), world.issue("shop")
    with app.app_context():
        session = database.session()
        changes.number_changed(session)  # as a reading of the change feed does
        numbered = session.get(ChangeCounter, "forms").value
        other_seq = session.get(Form, other["id"]).change_seq
        assert other_seq is not None
        audit.record(session, form["id"], "form.cancelled", "user:1", at=utcnow())
        session.flush()
        session.rollback()
        # A savepoint rolled back inside a transaction that commits.
        kept = audit.record(session, form["id"], "form.scanned", "device:x", at=utcnow(), n=1)
        session.flush()
        with pytest.raises(RuntimeError):
            with session.begin_nested():
                audit.record(session, form["id"], "form.scanned", "device:x", at=utcnow(), n=2)
                session.get(Form, other["id"]).email = "changed@example.org"
                session.flush()
                raise RuntimeError("the clerk changed their mind")
        also_kept = audit.record(session, form["id"], "form.scanned", "device:x", at=utcnow(), n=3)
        session.commit()
        linked = session.scalars(select(AuditLink.event_id).order_by(AuditLink.seq)).all()
        kept_ids = [kept.id, also_kept.id]
        # Two issued, two kept.
        assert session.scalar(select(func.count()).select_from(Event)) == before + 4
        # The other form changed only inside the rolled-back savepoint: no new place in the feed.
        session.expire_all()
        assert session.get(Form, other["id"]).change_seq == other_seq
        assert session.get(ChangeCounter, "forms").value == numbered  # re-scans do not move a form

    assert linked[-2:] == kept_ids
    assert intact(runner)[:2] == (before + 4, before + 4)


def test_an_event_added_past_audit_record_is_linked_too(app, world, runner):
    before = count(app, select(func.count()).select_from(Event))  # the world's setting up
    with app.app_context():
        session = database.session()
        # The column defaults fill in the time and the data.
        session.add(Event(form_id=None, type="system.maintenance", actor="system"))
        session.add(Event(form_id=None, type="system.maintenance", actor="system", data={"why": "upgrade"},
                          at=utcnow()))
        session.commit()
    assert intact(runner)[0] == before + 2


def test_many_concurrent_scans_make_chains_without_gaps(app, world, live_server, runner, figures):
    """Concurrent writers take whichever chain is free (on PostgreSQL; one
    on SQLite): every event is in exactly one chain, each chain numbered
    1, 2, 3 ... without a gap, and all of them verify."""
    forms = [world.issue("shop", traveller=traveller(passport_number=f"C{n:07d}")) for n in range(10)]
    kiosks = [world.devices["kiosk"], world.devices["rtm-kiosk"]]

    responses = all_at_once([
        ("POST", f"{live_server}/api/v1/scans", bearer(kiosks[n % 2]), {"qr_payload": forms[n % 10]["qr_payload"]})
        for n in range(40)
    ])

    assert {status for status, *_ in responses} == {200}
    events, _, _ = intact(runner)
    with app.app_context():
        session = database.session()
        links = session.execute(select(AuditLink.chain, AuditLink.seq).order_by(AuditLink.chain, AuditLink.seq)).all()
        total = session.scalar(select(func.count()).select_from(Event))
        scanned = session.scalar(select(func.count()).select_from(Event).where(Event.type == "form.scanned"))
    chains = {chain: [seq for c, seq in links if c == chain] for chain, _ in links}
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in chains.values()), chains
    assert events == len(links) == total
    assert scanned == 40
    figures(sent=40, events=total, links=len(links), chains=len(chains), gaps=total - len(links),
            errors=sum(status != 200 for status, *_ in responses), broken_links_found=0)


def test_the_trail_is_append_only_for_the_application(app, world):
    busy_day(world)
    with app.app_context():
        session = database.session()
        for statement in ("UPDATE audit_links SET hash = 'x'", "DELETE FROM audit_links"):
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(text(statement))
            session.rollback()


# --- tampering, each detected at the right place ----------------------------------

def test_changing_an_event_is_found_at_its_link(app, world, runner, figures):
    busy_day(world)
    victim = count(app, select(Event.id).where(Event.type == "form.refunded"))
    seq = link_of(app, victim)

    with as_superuser(app) as conn:
        conn.execute(update(Event.__table__).where(Event.id == victim)
                     .values(data={"amount_cents": 190000, "paid_at": "2026-12-01T10:00:00+00:00"}))

    assert broken(runner) == (seq, victim, "event content changed after it was linked")
    figures(tampered=1, broken_links_found=1)


def test_an_event_removed_with_its_link_is_a_gap_in_the_chain(app, world, runner, figures):
    busy_day(world)
    _, head, _ = intact(runner)
    seq = head // 2
    victim, before = event_at(app, seq), event_at(app, seq - 1)

    with as_superuser(app) as conn:
        conn.execute(delete(AuditLink.__table__).where(AuditLink.seq == seq))
        conn.execute(delete(Event.__table__).where(Event.id == victim))

    found_seq, found_event, what = broken(runner)
    assert (found_seq, found_event) == (seq, None)
    assert what.startswith(f"link missing: the chain jumps from seq {seq - 1} to {seq + 1} (after event {before})")
    figures(tampered=1, broken_links_found=1)


def test_an_event_deleted_under_its_link_is_found(app, world, runner):
    busy_day(world)
    victim = count(app, select(Event.id).where(Event.type == "form.cancelled"))
    seq = link_of(app, victim)

    with as_superuser(app) as conn:
        if conn.dialect.name == "postgresql":  # (SQLite does not enforce it on this connection)
            conn.execute(text("ALTER TABLE audit_links DROP CONSTRAINT fk_audit_links_event_id_events"))
        conn.execute(delete(Event.__table__).where(Event.id == victim))

    assert broken(runner) == (seq, victim, "event deleted: the link's event is gone")


def test_a_forged_event_without_a_link_is_found(app, world, runner, figures):
    ids = busy_day(world)
    _, head, _ = intact(runner)

    with as_superuser(app) as conn:
        forged = conn.execute(insert(Event.__table__).values(
            form_id=ids[0], type="form.refunded", actor="user:1", exit_point=None,
            data={"amount_cents": 5000}, at=utcnow()).returning(Event.id)).scalar_one()

    seq, event_id, what = broken(runner)
    assert (seq, event_id) == (head + 1, forged)
    assert what.startswith("event not linked")
    figures(tampered=1, broken_links_found=1)


def test_a_forged_event_with_a_made_up_link_does_not_verify(app, world, runner):
    ids = busy_day(world)
    _, head, head_hash = intact(runner)

    with as_superuser(app) as conn:
        forged = conn.execute(insert(Event.__table__).values(
            form_id=ids[0], type="form.refunded", actor="user:1", exit_point=None,
            data={"amount_cents": 5000}, at=utcnow()).returning(Event.id)).scalar_one()
        # Without the key, the best a forger can do is a guess.
        made_up = audit_chain.link_hash(b"not the key", head_hash, b"anything")
        conn.execute(insert(AuditLink.__table__).values(seq=head + 1, event_id=forged, hash=made_up))
        conn.execute(update(ChangeCounter.__table__).where(ChangeCounter.name == "audit").values(value=head + 1))

    seq, event_id, what = broken(runner)
    assert (seq, event_id) == (head + 1, forged)
    assert what.startswith("hash mismatch")


def test_an_altered_link_hash_is_found(app, world, runner, figures):
    busy_day(world)
    _, head, _ = intact(runner)
    seq = 5

    with as_superuser(app) as conn:
        conn.execute(update(AuditLink.__table__).where(AuditLink.seq == seq).values(hash="ab" * 32))

    assert broken(runner) == (seq, event_at(app, seq), "link hash altered (the event is as it was written)")
    figures(tampered=1, broken_links_found=1)


def test_cutting_the_tail_off_is_found_against_a_noted_head(app, world, runner, figures):
    busy_day(world)
    _, head, head_hash = intact(runner)
    # Later activity: the noted head is still there, unchanged.
    world.issue("shop", traveller=traveller(passport_number="T0000001"))
    assert intact(runner, "--expect-head", f"{head}:{head_hash}")[1] == head + 1

    with as_superuser(app) as conn:
        tail = conn.execute(select(AuditLink.seq, AuditLink.event_id).where(AuditLink.seq > head - 2)).all()
        conn.execute(delete(AuditLink.__table__).where(AuditLink.seq > head - 2))
        conn.execute(delete(Event.__table__).where(Event.id.in_([event_id for _, event_id in tail])))

    # The counter still knows how many links were made ...
    seq, _, what = broken(runner)
    assert seq == head - 1 and "the newest links were removed" in what

    # ... and once it is set back too, only the noted head tells.
    with as_superuser(app) as conn:
        conn.execute(update(ChangeCounter.__table__).where(ChangeCounter.name == "audit").values(value=head - 2))
    assert intact(runner)[:2] == (head - 2, head - 2)
    seq, _, what = broken(runner, "--expect-head", f"{head}:{head_hash}")
    assert seq == head and what.startswith("the noted head is gone: the chain now ends at seq")
    figures(tampered=1, broken_links_found=1)


def test_a_noted_head_that_differs_fails(app, world, runner):
    busy_day(world)
    _, head, _ = intact(runner)
    seq, event_id, what = broken(runner, "--expect-head", f"{head}:{'0' * 64}")
    assert (seq, event_id) == (head, event_at(app, head)) and "is not the noted head" in what
    result = runner.invoke(args=["verify-audit", "--expect-head", "nonsense"])
    assert result.exit_code == 2 and "SEQ:HASH" in result.output


def test_a_trail_checked_with_another_key_does_not_verify(app, world, runner):
    busy_day(world)
    app.config["AUDIT_CHAIN_KEY"] = uuid.uuid4().hex
    assert broken(runner)[:2] == (1, event_at(app, 1))


def test_a_small_batch_size_walks_the_same_chain(app, world, runner):
    busy_day(world)
    assert intact(runner, "--batch", "3") == intact(runner)
    with as_superuser(app) as conn:
        conn.execute(update(AuditLink.__table__).where(AuditLink.seq == 6).values(hash="cd" * 32))
    # The link after the altered one sits in the next batch.
    assert broken(runner, "--batch", "3")[0] == 6
    assert broken(runner, "--batch", "3")[2] == broken(runner)[2]


# --- upgrading a database that has events ----------------------------------------

@pytest.fixture
def old_database(database_url):
    """An empty database of this backend at revision 0006 (before the chain):
    a file for SQLite, a schema of its own on PostgreSQL."""
    if database_url.startswith("sqlite"):
        url = database_url.replace("test.sqlite3", "old.sqlite3")
        yield url
        return
    schema = f"old_{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{database_url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def test_upgrading_links_the_events_already_there_in_id_order(app, old_database):
    command.upgrade(alembic_config(old_database), "0006")
    engine = create_engine(old_database)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO retailers (id, vat_number, name, address, created_at) "
                          "VALUES (1, 'NL859559001B01', 'Watch House', '', '2026-01-01 00:00:00')"))
        events = Event.__table__
        for n in range(7):
            conn.execute(insert(events).values(
                form_id=None, type="form.scanned", actor=f"device:{n}", exit_point="AMS",
                data={"n": n, "text": "é 中", "list": [n, None]},
                at=datetime(2026, 11, 28, 10, 0, n, 1000 * n + 7, tzinfo=timezone.utc)))
    with pytest.raises(RuntimeError, match="AUDIT_CHAIN_KEY"):
        migrate(old_database)  # without the key the existing events cannot be linked

    key = app.config["AUDIT_CHAIN_KEY"].encode()
    migrate(old_database, key)

    with engine.connect() as conn:
        links = conn.execute(select(AuditLink.seq, AuditLink.event_id).order_by(AuditLink.seq)).all()
        ids = conn.execute(select(Event.id).order_by(Event.id)).scalars().all()
    assert [tuple(link) for link in links] == list(zip(range(1, 8), ids))
    with engine.connect() as conn:
        head = conn.execute(select(ChangeCounter.value, ChangeCounter.head_hash)
                            .where(ChangeCounter.name == "audit")).one()
        assert tuple(head) == (7, conn.scalar(select(AuditLink.hash).where(AuditLink.seq == 7)))
    from sqlalchemy.orm import Session
    with Session(engine, info={"audit_chain_key": key}) as session:
        report = audit_chain.verify(session, key)
        assert report.intact and report.links == 7
        # The next event continues the chain.
        session.add(Event(form_id=None, type="system.note", actor="system", data={}, at=utcnow()))
        session.commit()
        report = audit_chain.verify(session, key)
        assert report.intact and report.head_seq == 8
        assert audit_chain.verify(session, b"another key").broken.seq == 1
    engine.dispose()


# --- numbers taken with a scan's verdict ------------------------------------------

def _numbering_of(app, runner, act) -> tuple[list[str], int, tuple[int, int]]:
    """Run ``act`` (one request): the statements it sent, and the chain's
    events before and (events, head seq) after. A writer never takes the
    change feed's counter: checked here."""
    events_before, _, _ = intact(runner)
    counters_before = _counters(app)
    statements = statements_of(app, act)
    assert _counters(app).get("forms") == counters_before.get("forms")
    return statements, events_before, intact(runner)[:2]


def _counters(app) -> dict[str, int]:
    with app.app_context():
        return dict(database.session().execute(select(ChangeCounter.name, ChangeCounter.value)).all())


def _change_seq(app, form_id: str) -> int | None:
    with app.app_context():
        return database.session().scalar(select(Form.change_seq).where(Form.id == form_id))


def _marked(app, form_id: str) -> bool:
    """Marked changed, to be numbered at the change feed's next reading:
    never numbered, or its number negated."""
    seq = _change_seq(app, form_id)
    return seq is None or seq < 0


def _numbered(app) -> int:
    """Number the forms marked changed, as the next reading of the change
    feed does; the counter after."""
    with app.app_context():
        session = database.session()
        changes.number_changed(session)
        return session.get(ChangeCounter, "forms").value


def test_a_scans_verdict_marks_its_form_and_takes_its_chain_numbers_with_its_write(app, world, runner):
    form = world.issue("shop", traveller=traveller(passport_number="N0000001"))
    forms_before = _numbered(app)
    statements, events_before, chain = _numbering_of(app, runner, lambda: world.scan("kiosk", form["qr_payload"]))

    # Marked changed; numbered at the change feed's next reading.
    assert _change_seq(app, form["id"]) == -forms_before  # its number negated
    assert _numbered(app) == _change_seq(app, form["id"]) == forms_before + 1
    assert chain == (events_before + 2, events_before + 2)
    if app.extensions["db_engine"].dialect.name == "postgresql":
        # On PostgreSQL the verdict's statement marked the form and took
        # the chain's numbers; the commit only links the two events.
        assert not [s for s in statements if "mark_forms_take_chain_numbers" in s], statements
        assert [s for s in statements if "FOR NO KEY UPDATE" in s and "take_chain_numbers" in s]


def test_a_re_scan_takes_its_chain_number_with_its_scan_row_and_no_change_number(app, world, runner):
    """A re-scan leaves the form as it was: its event is linked into the
    chain, the form keeps its place in the change feed."""
    form = world.issue("shop", traveller=traveller(passport_number="N0000007"))
    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "validated"
    seq_before = _numbered(app)
    answer = {}
    statements, events_before, chain = _numbering_of(
        app, runner, lambda: answer.update(world.scan("kiosk", form["qr_payload"]).get_json()))

    assert answer["verdict"] == "validated"
    assert _change_seq(app, form["id"]) == seq_before and _numbered(app) == seq_before
    assert chain == (events_before + 1, events_before + 1)
    with app.app_context():
        session = database.session()
        newest = session.scalars(select(Event.type).where(Event.form_id == form["id"]).order_by(Event.id)).all()
    assert newest[-1] == "form.scanned"
    if app.extensions["db_engine"].dialect.name == "postgresql":
        # The scan row's statement took the chain's number, after a share
        # lock on the form's row; the commit only links the event.
        assert not [s for s in statements if "mark_forms_take_chain_numbers" in s], statements
        [write] = [s for s in statements if "INSERT INTO scans" in s]
        assert "FOR KEY SHARE" in write and "take_chain_numbers" in write
        assert write.index("FOR KEY SHARE") < write.index("take_chain_numbers")
        # The device's row with the facts, the scan row, the link.
        assert len(statements) == 3, statements


def test_a_travellers_lone_form_takes_its_numbers_with_its_verdict(app, app_world, runner):
    """The app's validation of one form takes its chain numbers as a
    kiosk's scan does, in the verdict's own statement; of several, as the
    transaction commits (each form's verdict is not its transaction's last
    write). Each form is marked changed by its verdict's write."""
    lone = app_world.issue_for(coat(), passport_number="N0000011")
    pair = [app_world.issue_for(coat(), passport_number="N0000012") for _ in range(2)]
    answers = []

    def validate(phone, forms):
        return lambda: answers.append(phone.verdicts([f["id"] for f in forms]))

    forms_before = _numbered(app)
    statements, events_before, chain = _numbering_of(
        app, runner, validate(app_world.phone(passport="N0000011").signed_in(), [lone]))
    pair_statements, _, pair_chain = _numbering_of(
        app, runner, validate(app_world.phone(passport="N0000012").signed_in(), pair))

    assert [i["verdict"] for a in answers for i in a["items"]] == ["validated"] * 3
    assert all(_marked(app, f["id"]) for f in (lone, *pair))
    assert _numbered(app) == forms_before + 3
    assert _change_seq(app, lone["id"]) == forms_before + 1
    assert sorted(_change_seq(app, f["id"]) for f in pair) == [forms_before + 2, forms_before + 3]
    assert chain == (events_before + 2, events_before + 2)
    assert pair_chain == (events_before + 6, events_before + 6)
    if app.extensions["db_engine"].dialect.name == "postgresql":
        assert not [s for s in statements if "mark_forms_take_chain_numbers" in s], statements
        assert [s for s in statements if "FOR NO KEY UPDATE" in s and "take_chain_numbers" in s]
        # Neither of the two verdicts took a counter's lock before the
        # other form's row: both are numbered as the transaction commits.
        assert not [s for s in pair_statements if "FOR NO KEY UPDATE" in s and "take_chain_numbers" in s]
        assert [s for s in pair_statements if "mark_forms_take_chain_numbers" in s], pair_statements
        assert len(statements) == len(pair_statements) - 3, (statements, pair_statements)


def test_a_passport_scan_marks_each_form_it_gave_a_verdict(app, world, runner):
    """Several forms in one transaction: marked changed by their verdicts,
    linked as it commits (the first verdict is not its transaction's last
    write, so it takes no counter's lock before the second form's row),
    numbered together at the change feed's next reading."""
    first = world.issue("shop", traveller=traveller(passport_number="N0000002"))
    second = world.issue("shop", traveller=traveller(passport_number="N0000002"))
    events_before, _, _ = intact(runner)
    forms_before = _numbered(app)

    r = world.post("kiosk", "/api/v1/scans/passport", {"passport_number": "N0000002", "passport_country": "CN"})
    assert r.status_code == 200
    assert [v["verdict"] for v in r.get_json()["items"]] == ["validated", "validated"]

    assert _marked(app, first["id"]) and _marked(app, second["id"])
    assert _numbered(app) == forms_before + 2
    assert sorted((_change_seq(app, first["id"]), _change_seq(app, second["id"]))) == \
        [forms_before + 1, forms_before + 2]
    assert intact(runner)[:2] == (events_before + 4, events_before + 4)


def test_writes_after_a_verdict_that_took_the_commits_numbers_are_numbered_after_it(app, world, runner):
    """A verdict written as its transaction's last write marks its form and
    takes its events' chain numbers with it; should the transaction write
    more after all, the commit marks and links that after them, without a
    gap."""
    form = world.issue("shop", traveller=traveller(passport_number="N0000004"))
    other = world.issue("shop", traveller=traveller(passport_number="N0000005"))
    events_before, _, _ = intact(runner)
    forms_before = _numbered(app)
    with app.app_context():
        session = database.session()
        ams = session.scalar(select(ExitPoint.id).where(ExitPoint.code == "AMS"))
        now = utcnow()
        event = {"form_id": form["id"], "actor": "device:x", "at": now, "exit_point": "AMS"}
        written = audit.record_pair_after(
            session, scans._EXPIRE, {"form_id": form["id"], "was": "issued", "status": "expired", "updated_at": now},
            {**event, "type": "form.expired", "data": {}}, scans._INSERT_SCAN,
            {"form_id": form["id"], "device_id": None, "exit_point_id": ams, "verdict": "refused",
             "reason_code": "deadline_passed", "created_at": now, "channel": "kiosk", "install_key": None,
             "received_at": now, "queued": False},
            {**event, "type": "form.scanned", "data": {}}, last=True)
        assert written is not None
        later = audit.record(session, other["id"], "form.cancelled", "user:1", at=now)
        session.get(Form, other["id"]).status = "cancelled"
        session.commit()
        numbers = dict(session.execute(select(Form.id, Form.change_seq)
                                       .where(Form.id.in_((form["id"], other["id"])))).all())
        linked = session.scalars(select(AuditLink.event_id).where(AuditLink.seq > events_before)
                                 .order_by(AuditLink.seq)).all()
    assert numbers[form["id"]] < 0 and numbers[other["id"]] < 0
    assert _numbered(app) == forms_before + 2
    assert linked == [written[0].id, written[1].id, later.id]
    assert intact(runner)[:2] == (events_before + 3, events_before + 3)


def _validated_after_losing(app, world, runner, form, *counters: str) -> tuple[list[str], int]:
    """Delete the rows of ``counters``, validate ``form`` at the kiosk and
    check that its two events were linked after the highest link, and the
    form numbered after the highest number given at the change feed's next
    reading; the statements the scan sent and the chain's events before
    it."""
    events_before, _, _ = intact(runner)
    highest = _numbered(app)
    with app.app_context():
        session = database.session()
        session.execute(delete(ChangeCounter).where(ChangeCounter.name.in_(counters)))
        session.commit()

    answer = {}
    statements = statements_of(app, lambda: answer.update(world.scan("kiosk", form["qr_payload"]).get_json()))

    assert answer["verdict"] == "validated"
    assert _numbered(app) == _change_seq(app, form["id"]) == highest + 1
    # Linked after the highest link of its chain (on PostgreSQL another
    # chain may take them while chain 0's row is missing).
    assert intact(runner)[0] == events_before + 2
    return statements, events_before


def test_a_scan_where_no_counter_has_a_row_yet_is_numbered_as_it_commits(app, world, runner):
    """Counter rows lost (restored by hand): the verdict's statement takes
    no number, the commit starts the chain's counter again after the
    highest link, and the next reading of the change feed its counter
    after the highest number given."""
    form = world.issue("shop", traveller=traveller(passport_number="N0000003"))
    _, events_before = _validated_after_losing(app, world, runner, form, "forms", "audit")

    # A re-scan likewise: its statement takes no number, its commit links
    # its event after the highest link there is.
    with app.app_context():
        session = database.session()
        session.execute(delete(ChangeCounter))
        session.commit()
    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "validated"
    assert intact(runner)[0] == events_before + 3
    # Every chain's counter made again after its highest link.
    with app.app_context():
        session = database.session()
        highest = dict(session.execute(
            select(AuditLink.chain, func.max(AuditLink.seq)).group_by(AuditLink.chain)).all())
        counters = _counters(app)
    assert {chain: counters["audit" if chain == 0 else f"audit.{chain}"] for chain in highest} == highest


def test_a_compare_and_set_that_loses_takes_no_number(app, world, runner):
    """Another request changed the form first: the write finds it no longer
    as read, writes nothing and moves no counter (a number taken and never
    linked would be a gap in the chain)."""
    form = world.issue("shop", traveller=traveller(passport_number="N0000011"))
    events_before, _, _ = intact(runner)
    forms = Form.__table__
    # Written as the scan's compare-and-set is, with the status it was read
    # in; the form is "issued", not that.
    cas = (update(forms).where(forms.c.id == bindparam("form_id"), forms.c.status == bindparam("was"))
           .values(status="refunded"))
    event = {"form_id": form["id"], "actor": "device:test", "exit_point": "AMS", "data": {}}
    now = utcnow()
    row = {"form_id": form["id"], "device_id": None, "exit_point_id": None, "verdict": "validated",
           "reason_code": None, "created_at": now, "channel": "kiosk", "install_key": None, "received_at": now,
           "queued": False}
    outcome = {}

    def lose():
        with app.app_context():
            session = database.session()
            outcome["before"] = dict(session.execute(select(ChangeCounter.name, ChangeCounter.value)).all())
            outcome["written"] = audit.record_pair_after(
                session, cas, {"form_id": form["id"], "was": "validated"}, {**event, "type": "form.validated"},
                scans._INSERT_SCAN, row, {**event, "type": "form.scanned"}, last=True)
            session.commit()

    statements = statements_of(app, lose)
    with app.app_context():
        session = database.session()
        after = dict(session.execute(select(ChangeCounter.name, ChangeCounter.value)).all())
        status = session.scalar(select(Form.status).where(Form.id == form["id"]))
    assert outcome["written"] is None
    assert after == outcome["before"] and status == "issued"
    assert intact(runner)[:2] == (events_before, events_before)
    if app.extensions["db_engine"].dialect.name == "postgresql":
        # The statement that lost is the one that would have taken them.
        assert [s for s in statements if "take_chain_numbers" in s]


def test_a_scan_where_only_the_change_feeds_counter_is_missing_takes_its_chain_numbers_with_its_write(
        app, world, runner):
    """The change feed's counter row lost, the audit chain's still there:
    writers do not take the feed's counter, so the verdict's statement
    takes the chain's numbers as usual; the feed's next reading starts its
    counter again after the highest number given."""
    form = world.issue("shop", traveller=traveller(passport_number="N0000012"))
    statements, events_before = _validated_after_losing(app, world, runner, form, "forms")
    if app.extensions["db_engine"].dialect.name == "postgresql":
        assert not [s for s in statements if "mark_forms_take_chain_numbers" in s], statements
        assert [s for s in statements if "take_chain_numbers" in s]


# --- numbers taken with an issue's insert --------------------------------------------

def test_an_issue_takes_its_chain_number_with_its_insert(app, world, runner):
    world.issue("shop")
    forms_before = _numbered(app)
    issued = {}
    statements, events_before, chain = _numbering_of(
        app, runner, lambda: issued.update(world.issue("shop", invoice="EARLY-1")))

    assert _change_seq(app, issued["id"]) is None  # a new form is marked changed
    assert chain == (events_before + 1, events_before + 1)
    # The change feed's next reading numbers it and lists it last.
    r = world.get("shop", "/api/v1/forms")
    assert [f["id"] for f in r.get_json()["items"]][-1] == issued["id"]
    assert _change_seq(app, issued["id"]) == _counters(app)["forms"] == forms_before + 1
    if app.extensions["db_engine"].dialect.name == "postgresql":
        # The insert's statement took the chain's number, after the
        # invoice's lock; the commit only links the event.
        assert not [s for s in statements if "mark_forms_take_chain_numbers" in s], statements
        [insert] = [s for s in statements if "INSERT INTO forms" in s]
        assert insert.index("pg_advisory_xact_lock") < insert.index("take_chain_numbers")
        assert len(statements) == 3, statements  # the user's row, the insert, the link


def test_a_duplicate_invoice_leaves_the_counters_as_they_were(app, world, runner):
    """The insert that finds its invoice taken writes nothing; the counters
    its statement moved are put back with the rolled-back transaction, so
    the next form gets the next numbers without a gap."""
    world.issue("shop", invoice="TWICE-1")
    _numbered(app)
    events_before, _, _ = intact(runner)
    with app.app_context():
        counters_before = dict(database.session().execute(select(ChangeCounter.name, ChangeCounter.value)).all())

    r = world.post("shop", "/api/v1/forms", form_body(invoice="TWICE-1"))
    assert r.status_code == 409 and r.get_json()["code"] == "duplicate_invoice"
    with app.app_context():
        assert dict(database.session().execute(select(ChangeCounter.name, ChangeCounter.value)).all()) \
            == counters_before
    assert intact(runner)[:2] == (events_before, events_before)

    form = world.issue("shop", invoice="TWICE-2")
    assert _numbered(app) == _change_seq(app, form["id"]) == counters_before["forms"] + 1
    assert intact(runner)[:2] == (events_before + 1, events_before + 1)


def test_a_batch_links_its_forms_as_it_commits(app, world, runner):
    """Several forms in one transaction: none takes the chain's counter
    with its insert (the batch holds it only for its commit); all are
    numbered together at the change feed's next reading."""
    world.issue("shop")
    forms_before = _numbered(app)
    answer = {}
    statements, events_before, chain = _numbering_of(app, runner, lambda: answer.update(world.post(
        "shop", "/api/v1/forms/batch", {"forms": [form_body(invoice=f"BATCH-EARLY-{n}") for n in range(3)]}
    ).get_json()))
    assert [item["status"] for item in answer["items"]] == [201] * 3, answer
    ids = [item["body"]["id"] for item in answer["items"]]
    assert [_change_seq(app, i) for i in ids] == [None] * 3
    assert _numbered(app) == forms_before + 3
    assert sorted(_change_seq(app, i) for i in ids) == [forms_before + 1, forms_before + 2, forms_before + 3]
    assert chain == (events_before + 3, events_before + 3)
    if app.extensions["db_engine"].dialect.name == "postgresql":
        inserts = [s for s in statements if "INSERT INTO forms" in s]
        assert len(inserts) == 3 and not [s for s in inserts if "take_chain_numbers" in s]
        assert all("pg_advisory_xact_lock" in s for s in inserts)
        assert len([s for s in statements if "mark_forms_take_chain_numbers" in s]) == 1


# --- the last statement before the commit ---------------------------------------------

@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
@pytest.mark.parametrize("write", ["scan", "issue"])
def test_a_write_lets_the_counters_go_with_its_links(app, world, database_url, write):
    """Every writer waits for the counters' row locks. A verdict or an issue
    sends its links with its COMMIT, so once the links' statement has
    returned the transaction is committed and the counters are free: not a
    round trip later, when a COMMIT of its own would have returned."""
    form = world.issue("shop", traveller=traveller(passport_number="N0000006"))
    other = create_engine(database_url)
    seen = []

    def look(_conn, _cursor, statement, *_args):
        if "link_events" not in statement:
            return
        with other.connect() as connection:
            newest = connection.scalar(text("SELECT max(seq) FROM audit_links"))
            free = counters_free(connection)
        seen.append((free, newest))

    engine = app.extensions["db_engine"]
    event.listen(engine, "after_cursor_execute", look)
    try:
        if write == "scan":
            assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "validated"
        else:
            world.issue("shop", invoice="LAST-1")
    finally:
        event.remove(engine, "after_cursor_execute", look)
        other.dispose()
    # One statement linked the events; by the time it returned, the
    # counters were free and its links committed, there for everyone.
    with app.app_context():
        newest = database.session().scalar(select(func.max(AuditLink.seq)))
    assert seen == [(True, newest)]


def _judged(app, world, form: dict, *, ends: bool, then=None):
    """``scans.scan`` for the kiosk, as the view calls it but with ``ends``
    as given, and what another connection sees the moment it returns,
    before the session commits: the form's status, the chain's newest link
    and whether the counters are free. ``then(session)`` runs after that,
    before the commit; the commit's statements are returned too."""
    engine = app.extensions["db_engine"]
    with app.app_context():
        session = database.session()
        principal, context = scanning_as(app, world, "kiosk", session)
        outcome = scans.scan(session, principal, form["qr_payload"], context, utcnow(), ends=ends)
        with engine.connect() as other:
            status = other.scalar(select(Form.status).where(Form.id == form["id"]))
            newest = other.scalar(select(func.max(AuditLink.seq)))
            free = counters_free(other)
        if then is not None:
            then(session)
        committing = statements_of(app, session.commit)
    return outcome.verdict, status, newest, free, committing


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_kiosks_verdict_is_committed_with_its_links_before_the_scan_returns(app, world, database_url, runner):
    """The view writes nothing after a scan, so the scan's transaction
    commits with its links as soon as the verdict's statement has taken the
    chain's head: the bookkeeping every write does comes after, not while
    every other writer waits for the counters. The view's own commit then
    sends nothing."""
    world.issue("shop", traveller=traveller(passport_number="N0000010"))  # the counters' rows exist
    form = world.issue("shop", traveller=traveller(passport_number="N0000011"))
    events_before, _, _ = intact(runner)

    verdict, status, newest, free, committing = _judged(app, world, form, ends=True)

    assert (verdict, status, free, committing) == ("validated", "validated", True, [])
    # Both events (the validation and the scan) linked by then, and the
    # chain verifies with them.
    assert intact(runner)[:2] == (events_before + 2, events_before + 2) == (newest, newest)
    # A re-scan's one event likewise.
    assert _judged(app, world, form, ends=True) == ("validated", "validated", events_before + 3, True, [])
    assert intact(runner)[:2] == (events_before + 3, events_before + 3)


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_scan_that_may_be_followed_by_other_writes_leaves_its_transaction_to_the_commit(app, world,
                                                                                          database_url, runner):
    """A caller that did not say it writes nothing after the scan (the
    demo data, a passport's forms) gets the scan in its own transaction,
    committed when it commits."""
    world.issue("shop", traveller=traveller(passport_number="N0000012"))
    form = world.issue("shop", traveller=traveller(passport_number="N0000013"))
    events_before, _, _ = intact(runner)

    verdict, status, newest, free, committing = _judged(app, world, form, ends=False)

    assert (verdict, status, free, newest) == ("validated", "issued", False, events_before)
    assert len(committing) == 1 and "link_events" in committing[0]
    assert intact(runner)[:2] == (events_before + 2, events_before + 2)


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_verdict_that_opens_a_check_commits_with_its_check(app, world, database_url, runner):
    """A verdict that sends the traveller to the desk writes the check after
    it: the two commit together, never the verdict alone."""
    world.issue("shop", traveller=traveller(passport_number="N0000014"))
    form = world.issue("shop", item(60500, category="watches", description="Diver watch"),
                       traveller=traveller(passport_number="N0000015"))
    events_before, _, _ = intact(runner)

    verdict, status, newest, free, committing = _judged(app, world, form, ends=True)

    assert (verdict, status, free, newest) == ("check_required", "issued", False, events_before)
    assert [s for s in committing if "INSERT INTO checks" in s] and "link_events" in committing[-1]
    with app.app_context():
        session = database.session()
        assert session.scalar(select(Form.status).where(Form.id == form["id"])) == "check_required"
        assert session.scalar(text("SELECT count(*) FROM checks WHERE form_id = :f AND status = 'pending'"),
                              {"f": form["id"]}) == 1
    assert intact(runner)[:2] == (events_before + 2, events_before + 2)


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_write_after_a_scan_committed_with_its_links_is_refused_and_rolled_back(app, world, database_url,
                                                                                  runner):
    """A scan told that nothing follows it commits with its links; should a
    caller write after all, that write would be a transaction of its own:
    its commit is refused, and the write rolled back, not stored apart from
    the scan."""
    world.issue("shop", traveller=traveller(passport_number="N0000016"))
    form = world.issue("shop", traveller=traveller(passport_number="N0000017"))
    events_before, _, _ = intact(runner)

    def write_more(session):
        audit.record(session, form["id"], "form.noted", "test")

    with pytest.raises(RuntimeError, match="written after the transaction's last write committed it"):
        _judged(app, world, form, ends=True, then=write_more)
    with app.app_context():
        session = database.session()
        assert session.scalar(select(Form.status).where(Form.id == form["id"])) == "validated"
        assert session.scalar(select(func.count()).select_from(Event).where(Event.type == "form.noted")) == 0
    assert intact(runner)[:2] == (events_before + 2, events_before + 2)


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_links_given_in_uneven_lists_are_refused_whole(app, database_url):
    """link_events pairs each number with its event and hash by position: a
    list shorter than the others would link events to the wrong numbers, or
    leave the head behind. Nothing is written."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            links = connection.scalar(text("SELECT count(*) FROM audit_links"))
            head = connection.scalar(text("SELECT head_hash FROM change_counters WHERE name = 'audit'"))
            for seqs, ids, hashes in (("{900001,900002}", "{1}", f"{{{'a' * 64},{'b' * 64}}}"),
                                      ("{900001}", "{1}", "{}"), ("{}", "{}", "{}")):
                with pytest.raises(DBAPIError, match="as many seqs"):
                    connection.execute(text("SELECT link_events(CAST(0 AS smallint), CAST(:s AS bigint[]), "
                                            "CAST(:i AS bigint[]), CAST(:h AS text[]))"),
                                       {"s": seqs, "i": ids, "h": hashes})
                connection.rollback()
            assert connection.scalar(text("SELECT count(*) FROM audit_links")) == links
            assert connection.scalar(text("SELECT head_hash FROM change_counters WHERE name = 'audit'")) == head
    finally:
        engine.dispose()


_REFUSE_LINKS = {
    "postgresql": ["CREATE FUNCTION refuse_link() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'links refused'; END $$",
                   "CREATE TRIGGER refuse_link BEFORE INSERT ON audit_links "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_link()"],
    "sqlite": ["CREATE TRIGGER refuse_link BEFORE INSERT ON audit_links "
               "BEGIN SELECT RAISE(ABORT, 'links refused'); END"],
}
_ALLOW_LINKS = {"postgresql": ["DROP TRIGGER refuse_link ON audit_links", "DROP FUNCTION refuse_link()"],
                "sqlite": ["DROP TRIGGER refuse_link"]}


def test_a_scan_whose_links_fail_writes_nothing_and_goes_through_when_sent_again(app, world, runner):
    """The links are the last statement of the scan's transaction (on
    PostgreSQL, sent with its COMMIT): should the database refuse them, the
    verdict, the scan and its events are rolled back with them, and the
    connection serves the next request."""
    form = world.issue("shop", traveller=traveller(passport_number="N0000007"))
    events_before, _, _ = intact(runner)

    def run(statements):
        with app.app_context():
            session = database.session()
            for statement in statements[session.get_bind().dialect.name]:
                session.execute(text(statement))
            session.commit()

    def state():
        with app.app_context():
            session = database.session()
            return (session.scalar(select(Form.status).where(Form.id == form["id"])),
                    session.scalar(select(func.count()).select_from(Event).where(Event.form_id == form["id"])),
                    dict(session.execute(select(ChangeCounter.name, ChangeCounter.value)).all()))

    before = state()
    run(_REFUSE_LINKS)
    try:
        r = world.scan("kiosk", form["qr_payload"])
    finally:
        run(_ALLOW_LINKS)
    assert r.status_code >= 409 and r.headers["Content-Type"] == PROBLEM, r.get_json()
    assert state() == before and before[0] == "issued"
    assert intact(runner)[:2] == (events_before, events_before)

    assert world.scan("kiosk", form["qr_payload"]).get_json()["verdict"] == "validated"
    assert intact(runner)[:2] == (events_before + 2, events_before + 2)


# --- several chains (PostgreSQL) ------------------------------------------------------

HEAD_OF_CHAIN = re.compile(r"^chain (\d+): head seq (\d+) hash ([0-9a-f]{64})$", re.M)


def _printed(output: str) -> list[str]:
    """verify-audit's lines, without its log line."""
    return [line for line in output.splitlines() if not line.startswith("{")]


def _chains_of(app, form_id: str) -> set[int]:
    with app.app_context():
        return set(database.session().scalars(
            select(AuditLink.chain).join(Event, Event.id == AuditLink.event_id).where(Event.form_id == form_id)))


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_writer_takes_a_free_chain_while_another_transaction_holds_chain_0(app, world, database_url, runner):
    """Writers do not queue for one chain: with chain 0's counter held, a
    scan takes chain 1 and commits at once. Every chain verifies, each with
    its head to note, and tampering in chain 1 is found there."""
    form = world.issue("shop", traveller=traveller(passport_number="C0000001"))
    events_before, head, head_hash = intact(runner)
    with app.extensions["db_engine"].connect() as holder:
        holder.execute(text("SELECT value FROM change_counters WHERE name = 'audit' FOR UPDATE"))
        answer = in_time(lambda: world.scan("kiosk", form["qr_payload"]).get_json())
        holder.rollback()
    assert answer is not None and answer["verdict"] == "validated", "the scan waited for chain 0"
    assert _chains_of(app, form["id"]) == {0, 1}  # issued in chain 0, scanned in chain 1

    code, output = verify(runner)
    assert code == 0 and INTACT.search(output).groups()[:2] == (str(events_before + 2), str(head))
    [(chain, seq, digest)] = HEAD_OF_CHAIN.findall(output)
    assert (chain, seq) == ("1", "2")
    noted = (f"{head}:{head_hash}", f"1/2:{digest}")
    assert f"heads to note: {' '.join(noted)}" in output
    code_noted, output_noted = verify(runner, "--expect-head", noted[0], "--expect-head", noted[1])
    assert (code_noted, _printed(output_noted)) == (code, _printed(output))

    # Chain 1's newest link and event cut off, its counter set back: only
    # its noted head tells.
    with as_superuser(app) as conn:
        event_id = conn.scalar(select(AuditLink.event_id).where(AuditLink.chain == 1, AuditLink.seq == 2))
        conn.execute(delete(AuditLink.__table__).where(AuditLink.chain == 1, AuditLink.seq == 2))
        conn.execute(delete(Event.__table__).where(Event.id == event_id))
        conn.execute(update(ChangeCounter.__table__).where(ChangeCounter.name == "audit.1").values(value=1))
    assert verify(runner)[0] == 0
    code, output = verify(runner, "--expect-head", noted[0], "--expect-head", noted[1])
    assert code == 1 and "audit trail broken at chain 1 seq 2 (event unknown): the noted head is gone" in output

    # Chain 1's first event changed: found at its link.
    with as_superuser(app) as conn:
        event_id = conn.scalar(select(AuditLink.event_id).where(AuditLink.chain == 1, AuditLink.seq == 1))
        conn.execute(update(Event.__table__).where(Event.id == event_id).values(actor="device:someone-else"))
    code, output = verify(runner)
    assert code == 1 and f"audit trail broken at chain 1 seq 1 (event {event_id}): " in output


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_with_every_chain_held_a_writer_waits_for_chain_0(app, world, database_url, runner):
    """Every chain held by other transactions: the scan's statement takes
    none, and its commit waits for chain 0, then links there."""
    first, form = (world.issue("shop", traveller=traveller(passport_number="C0000002")) for _ in range(2))
    with app.extensions["db_engine"].connect() as holder:
        # Chain 0 held: the first scan's commit makes the other chains'
        # counter rows (emptied with the tables before this test) and takes one.
        holder.execute(text("SELECT value FROM change_counters WHERE name = 'audit' FOR UPDATE"))
        assert in_time(lambda: world.scan("kiosk", first["qr_payload"]).get_json())["verdict"] == "validated"
        holder.rollback()
    assert _chains_of(app, first["id"]) == {0, 1}
    events_before, head, _ = intact(runner)
    with app.extensions["db_engine"].connect() as holder:
        held = holder.execute(text("SELECT name FROM change_counters WHERE name = 'audit' OR name LIKE 'audit.%' "
                                   "FOR UPDATE")).all()
        assert len(held) == 8
        answer = {}
        waiting = threading.Thread(target=lambda: answer.update(world.scan("kiosk", form["qr_payload"]).get_json()))
        waiting.start()
        waiting.join(1)
        assert waiting.is_alive() and not answer
        holder.rollback()
        waiting.join(30)
    assert answer["verdict"] == "validated"
    assert _chains_of(app, form["id"]) == {0}
    assert intact(runner)[:2] == (events_before + 2, head + 2)


def test_going_back_to_one_chain_is_refused_while_links_are_in_others(tmp_path):
    """Migration 0019's downgrade would leave the links of chains 1 to 7
    where no verification walks them: it refuses, and changes nothing."""
    url = f"sqlite:///{tmp_path / 'chains.sqlite3'}"
    command.upgrade(alembic_config(url), "heads")
    engine = create_engine(url)
    with engine.begin() as conn:
        # An event and its link in chain 1, as PostgreSQL's writers make them.
        event_id = conn.execute(insert(Event.__table__).values(
            form_id=None, type="test", actor="test", exit_point=None, data={},
            at=datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc))).inserted_primary_key[0]
        conn.execute(insert(AuditLink.__table__).values(chain=1, seq=1, event_id=event_id, hash="a" * 64))
    engine.dispose()

    with pytest.raises(RuntimeError, match="chains other than 0"):
        command.downgrade(alembic_config(url), "0018")

    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0019"
        assert conn.execute(select(AuditLink.chain, AuditLink.seq)).all() == [(1, 1)]
    engine.dispose()


# --- an id drawn twice ----------------------------------------------------------------

def _draws(monkeypatch, *ids):
    """new_form_id gives ``ids`` in turn (then the last one again)."""
    given = list(ids)
    monkeypatch.setattr(formid, "new_form_id", lambda country="NL", rng=None: given.pop(0) if len(given) > 1
                        else given[0])


def test_an_issue_whose_drawn_id_is_taken_draws_another_and_numbers_it_once(app, world, runner, monkeypatch):
    """Form ids are drawn at random: one a form already has is drawn
    again, instead of the shop being told of a conflict. The draw that
    lost writes nothing and takes no number, so the form's numbers follow
    the counters without a gap and the chain verifies."""
    taken = world.issue("shop", invoice="DRAW-1")
    fresh = formid.new_form_id()
    events_before, _, _ = intact(runner)
    forms_before = _numbered(app)
    _draws(monkeypatch, taken["id"], fresh)

    r = world.post("shop", "/api/v1/forms", form_body(invoice="DRAW-2"))

    assert r.status_code == 201, r.get_json()
    assert r.get_json()["id"] == fresh
    assert _numbered(app) == _change_seq(app, fresh) == forms_before + 1
    assert intact(runner)[:2] == (events_before + 1, events_before + 1)
    again = world.get("shop", f"/api/v1/forms/{taken['id']}").get_json()
    assert (again["invoice_number"], again["qr_payload"]) == ("DRAW-1", taken["qr_payload"])
    # The QR code signs the id the form got.
    assert world.scan("kiosk", r.get_json()["qr_payload"]).get_json()["form_id"] == fresh


def test_a_batch_form_whose_drawn_id_is_taken_draws_another(app, world, runner, monkeypatch):
    taken = world.issue("shop", invoice="DRAW-3")
    fresh, other = formid.new_form_id(), formid.new_form_id()
    events_before, _, _ = intact(runner)
    _draws(monkeypatch, taken["id"], fresh, other)

    r = world.post("shop", "/api/v1/forms/batch", {"forms": [form_body(invoice="DRAW-4"), form_body(invoice="DRAW-5")]})

    assert [(item["status"], item["body"]["id"]) for item in r.get_json()["items"]] == [(201, fresh), (201, other)]
    assert intact(runner)[:2] == (events_before + 2, events_before + 2)


def test_an_issue_that_draws_only_taken_ids_writes_nothing(app, world, runner, monkeypatch):
    taken = world.issue("shop", invoice="DRAW-6")
    events_before, _, _ = intact(runner)
    with app.app_context():
        counters_before = dict(database.session().execute(select(ChangeCounter.name, ChangeCounter.value)).all())
    _draws(monkeypatch, taken["id"])

    r = world.post("shop", "/api/v1/forms", form_body(invoice="DRAW-7"))

    assert r.status_code == 500 and r.headers["Content-Type"] == PROBLEM
    with app.app_context():
        session = database.session()
        assert dict(session.execute(select(ChangeCounter.name, ChangeCounter.value)).all()) == counters_before
        assert session.scalar(select(func.count()).select_from(Form).where(Form.invoice_number == "DRAW-7")) == 0
    assert intact(runner)[:2] == (events_before, events_before)
