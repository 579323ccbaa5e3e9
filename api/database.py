"""Database engine and the per-request session.

SQLAlchemy 2 without a Flask extension: one engine per app, one session per
request (closed, and rolled back if still open, when the request ends).
"""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import MetaData, create_engine, event
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


def make_engine(url: str) -> Engine:
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
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
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
