"""Database engine and the per-request session.

SQLAlchemy 2 without a Flask extension: one engine per app, one session per
request (closed, and rolled back if still open, when the request ends).
"""
from __future__ import annotations

import time

from flask import Flask, current_app, g
from sqlalchemy import MetaData, create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from . import custody

# Stable constraint names, so Alembic migrations can refer to them on every
# database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# A connection the pool hands out right after it came back needs no check:
# it just worked. One that sat unused for a while may have been dropped
# meanwhile (the database restarted, a firewall closed it), so it is pinged
# first and replaced if dead, as pool_pre_ping does for every checkout.
# Under load, connections come back within milliseconds and a request
# saves that round trip; a connection dropped in that window fails its
# request with a 503 (api/problems.py), and SQLAlchemy then replaces every
# pooled connection made before it.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "idle_since"


def _ping_after_idle(engine: Engine, seconds: float) -> None:
    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_connection, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) < seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool replaces this connection and every one made before it.
            raise exc.InvalidatePoolError() from error


def make_engine(url: str, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # Foreign keys are off by default in SQLite; WAL lets readers run
            # beside the one writer.
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=10)
    _ping_after_idle(engine, ping_after_idle)
    return engine


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], float(app.config["DATABASE_PING_AFTER_IDLE_SECONDS"]))
    app.extensions["db_engine"] = engine
    # Sessions carry the audit chain's key and the cipher of the signing
    # secrets (api/custody.py): events are linked as their transaction
    # commits and webhook secrets opened, also in worker threads without an
    # app context.
    app.extensions["db_sessionmaker"] = sessionmaker(
        engine, expire_on_commit=False, info={"audit_chain_key": app.config["AUDIT_CHAIN_KEY"].encode(),
                                              custody.SESSION_INFO: app.extensions["secret_cipher"]})
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["db_engine"]


def session() -> Session:
    """The session of the current request or CLI command."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_sessionmaker"]()
    return g.db_session


def _close_session(_exc=None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


class HotStatement:
    """A Core statement that a hot path (every scan, every commit) runs.

    SQLAlchemy's own work around each execution (the compiled cache's
    lookup, parameter and execution-context objects, result wrapping) costs
    about as much CPU as psycopg's and more than a plain statement takes
    PostgreSQL to run. On PostgreSQL the statement is therefore compiled once
    and sent through the session's driver connection, in the session's
    transaction, with the same type conversion both ways (the types' own
    bind and result processors). Listeners of ``before_cursor_execute`` and
    ``after_cursor_execute`` still see it; errors are raised as SQLAlchemy raises them (a lost
    connection is a 503 and invalidated, api/problems.py). SQLite runs it
    through SQLAlchemy as usual.

    ``execute`` returns a cursor-like object (fetchone, fetchall, rowcount)
    whose rows are tuples, in the statement's column order.
    """

    def __init__(self, statement) -> None:
        self.statement = statement
        self._compiled: dict = {}

    def _for(self, dialect):
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            c = self.statement.compile(dialect=dialect)
            if "POSTCOMPILE" in c.string:
                raise ValueError("a HotStatement cannot hold expanding parameters (IN lists, literal binds)")
            binds = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                     for bind, name in c.bind_names.items()}
            # The values written into the statement itself (.values(status="expired")).
            fixed = {name: bind.effective_value for bind, name in c.bind_names.items() if not bind.required}
            if hasattr(self.statement, "returning_column_descriptions"):  # INSERT/UPDATE ... RETURNING
                types = [d["type"] for d in self.statement.returning_column_descriptions]
            else:  # a SELECT (a plain text() has no typed columns)
                types = [column.type for column in getattr(self.statement, "selected_columns", ())]
            results = [type_.dialect_impl(dialect).result_processor(dialect, None) for type_ in types]
            compiled = self._compiled[dialect.name] = (
                c.string, {k: p for k, p in binds.items() if p is not None}, fixed,
                results if any(results) else None)
        return compiled

    def execute(self, session: Session, params: dict):
        connection = session.connection()
        dialect = connection.dialect
        if dialect.name != "postgresql":
            return connection.execute(self.statement, params)
        sql, binds, fixed, results = self._for(dialect)
        if fixed:
            params = {**fixed, **params}
        if binds:
            try:
                params = {k: (binds[k](v) if k in binds else v) for k, v in params.items()}
            except Exception as error:
                # As SQLAlchemy reports a value its column type refuses.
                raise exc.StatementError(f"({type(error).__qualname__}) {error}", sql, params, error) from error
        cursor = _cursor(connection.connection, self)
        _execute(connection, cursor, sql, params)
        return cursor if results is None else _Processed(cursor, results)


def execute_then_commit(session: Session, sql: str) -> None:
    """PostgreSQL: run ``sql`` and commit the session's transaction, sent
    to the server in one message (the simple query protocol), so that what
    ``sql`` locks is held for one round trip less than with a COMMIT of its
    own. That protocol takes no parameters: ``sql`` holds its values
    written in, so only values the caller made itself, never input. For a
    ``before_commit`` hook's last statement: SQLAlchemy's COMMIT that
    follows finds the transaction ended and sends nothing. Errors are
    raised as ``HotStatement`` raises them, the transaction left to roll
    back."""
    connection = session.connection()
    _execute(connection, _cursor(connection.connection, execute_then_commit), f"{sql}; COMMIT", None)


def _execute(connection, cursor, sql: str, params: dict | None) -> None:
    """``sql`` on the driver's ``cursor``, seen by SQLAlchemy as if it had
    sent it."""
    dispatch = connection.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
    try:
        cursor.execute(sql, params)
    except Exception as error:
        # As SQLAlchemy handles a failed statement (its own method for
        # it): wrapped in its exception classes, handle_error listeners
        # told, a lost connection invalidated.
        connection._handle_dbapi_exception(error, sql, params, cursor, None)
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(connection, cursor, sql, params, None, False)


def _cursor(pooled, statement):
    """``statement``'s cursor on the pooled connection ``pooled``, made once
    per connection: a new psycopg cursor per execution makes its
    transformer again and looks up the columns' loaders again (about a
    fifth of a small statement's client-side CPU). The pool forgets the
    cursors with the connection (its ``info`` is cleared when the
    connection is replaced). Callers fetch a result before running the
    same statement again, as every hot path does."""
    cursors = pooled.info.get(_CURSORS)
    if cursors is None:
        cursors = pooled.info[_CURSORS] = {}
    cursor = cursors.get(statement)
    if cursor is None or cursor.closed:
        cursor = cursors[statement] = pooled.driver_connection.cursor()
    return cursor


_CURSORS = "hot_statement_cursors"


class _Processed:
    """A cursor whose rows pass through the columns' result processors."""

    def __init__(self, cursor, processors) -> None:
        self._cursor, self._processors = cursor, processors
        self.rowcount = cursor.rowcount

    def _row(self, row):
        return tuple(value if p is None or value is None else p(value)
                     for p, value in zip(self._processors, row))

    def fetchone(self):
        row = self._cursor.fetchone()
        return None if row is None else self._row(row)

    def fetchall(self):
        return [self._row(row) for row in self._cursor.fetchall()]
