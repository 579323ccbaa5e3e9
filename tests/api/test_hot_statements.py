"""Hot statements (api/database.HotStatement): on PostgreSQL sent through
the driver connection instead of SQLAlchemy's execution, they must behave
exactly as SQLAlchemy would: the same values both ways, the same
transaction and SAVEPOINTs, the same events and exceptions."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import bindparam, event, exc, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from api import database
from api.models import Event, Retailer


def _insert_event() -> database.HotStatement:
    events = Event.__table__
    return database.HotStatement(
        events.insert().values(form_id=bindparam("form_id"), type="test.hot", actor=bindparam("actor"),
                               exit_point=None, data=bindparam("data"), at=bindparam("at"))
        .returning(events.c.id, events.c.type, events.c.data, events.c.at))


def test_values_go_in_and_come_back_as_sqlalchemy_gives_them(app):
    at = datetime(2026, 12, 3, 14, 30, 15, 123456, tzinfo=timezone.utc)
    with app.app_context():
        session = database.session()
        event_id, type_, data, stored_at = _insert_event().execute(
            session, {"form_id": None, "actor": "user:1", "data": {"n": [1, "x"]}, "at": at}).fetchone()
        # The statement's own value ("test.hot"), the JSON column, the UTC
        # timestamp: as written.
        assert (type_, data, stored_at) == ("test.hot", {"n": [1, "x"]}, at)
        assert stored_at.tzinfo is not None and stored_at.utcoffset().total_seconds() == 0
        session.commit()
        row = session.execute(select(Event.type, Event.data, Event.at).where(Event.id == event_id)).one()
        assert tuple(row) == ("test.hot", {"n": [1, "x"]}, at)
        # A naive timestamp is refused, as the column type refuses it.
        with pytest.raises(exc.StatementError):
            _insert_event().execute(session, {"form_id": None, "actor": "user:1", "data": {},
                                              "at": datetime(2026, 12, 3, 14, 30)})


def test_listeners_see_hot_statements_and_errors_are_sqlalchemys(app, world):
    seen = []
    engine = app.extensions["db_engine"]

    def before(_conn, _cursor, statement, *_args):
        seen.append(("before", statement))

    def after(_conn, _cursor, statement, *_args):
        seen.append(("after", statement))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        with app.app_context():
            session = database.session()
            values = {"form_id": None, "actor": "user:1", "data": {}, "at": datetime.now(timezone.utc)}
            _insert_event().execute(session, values)
            with pytest.raises(exc.IntegrityError):
                # No such form: the foreign key refuses it, and the view's
                # IntegrityError handling (api/resources/common.py) applies.
                _insert_event().execute(session, {**values, "form_id": "NO-SUCH-FORM"})
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    inserts = [when for when, statement in seen if "INSERT INTO events" in statement]
    # Both sides of the one that ran, only "before" of the one that failed.
    assert inserts == ["before", "after", "before"]


def test_a_hot_write_inside_a_rolled_back_savepoint_is_gone(app):
    with app.app_context():
        session: Session = database.session()
        count = session.scalar(select(func.count()).select_from(Event))
        kept = {"form_id": None, "actor": "user:1", "data": {}, "at": datetime.now(timezone.utc)}
        _insert_event().execute(session, kept)
        with pytest.raises(RuntimeError):
            with session.begin_nested():
                _insert_event().execute(session, kept)
                raise RuntimeError("undo the savepoint")
        session.commit()
        assert session.scalar(select(func.count()).select_from(Event)) == count + 1


def test_statements_whose_text_depends_on_the_values_are_refused():
    """An IN list's text changes with its values: it cannot be compiled once."""
    retailers = Retailer.__table__
    expanding = database.HotStatement(select(retailers.c.id).where(retailers.c.id.in_(bindparam("ids"))))
    with pytest.raises(ValueError, match="expanding"):
        expanding._for(postgresql.psycopg.dialect())


def test_a_statement_runs_again_after_an_error_and_on_a_replaced_connection(app):
    """One cursor per statement and connection: it survives a failed
    execution and goes with its connection when that is replaced."""
    statement = _insert_event()
    values = {"form_id": None, "actor": "user:1", "data": {"n": 1}, "at": datetime.now(timezone.utc)}
    with app.app_context():
        session = database.session()
        statement.execute(session, values).fetchone()
        with pytest.raises(exc.IntegrityError):
            statement.execute(session, {**values, "form_id": "NO-SUCH-FORM"})
        session.rollback()
        second = statement.execute(session, values).fetchone()[0]
        session.commit()
        # The connection dies (the database restarted, say): the pool
        # replaces it, and the statement runs on the new one.
        session.connection().invalidate()
        session.rollback()
        third = statement.execute(session, {**values, "data": {"n": 3}}).fetchone()
        session.commit()
        assert third[2] == {"n": 3}
        # The first was rolled back with the failed one.
        stored = session.execute(select(Event.id, Event.data).where(Event.type == "test.hot")
                                 .order_by(Event.id)).all()
        assert [tuple(row) for row in stored] == [(second, {"n": 1}), (third[0], {"n": 3})]
