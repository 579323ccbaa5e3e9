"""Fixed-window rate limits, and failures that make the next attempt
wait longer and longer, kept in the database.

The counters live in the database every worker shares, so a limit holds
across gunicorn workers and machines; Flask-Limiter would need Redis or
memcached for that, which this deployment does not otherwise run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models import RateLimit
from ..problems import Problem


def hit(session: Session, key: str, limit: int, window_seconds: int, now: datetime) -> None:
    """Count one request under ``key``; raise 429 once more than ``limit``
    fall in the current window. Commits the counter at once, so it counts
    even when the request itself then fails."""
    window = int(now.timestamp()) // window_seconds * window_seconds
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    statement = insert(RateLimit).values(key=key, window_start=window, hits=1)
    same_window = RateLimit.window_start == statement.excluded.window_start
    statement = statement.on_conflict_do_update(
        index_elements=[RateLimit.key],
        set_={
            "hits": case((same_window, RateLimit.hits + 1), else_=1),
            "window_start": statement.excluded.window_start,
        },
    ).returning(RateLimit.hits)
    count = session.execute(statement).scalar_one()
    session.commit()
    if count > limit:
        retry_after = max(1, math.ceil(window + window_seconds - now.timestamp()))
        raise Problem(
            429, "too_many_requests", "Too many attempts; wait a moment and try again.",
            headers={"Retry-After": str(retry_after)},
        )



# --- failures with a growing wait --------------------------------------------
# The same table, another use: for a backoff key, ``hits`` counts failures
# and ``window_start`` is the moment (epoch seconds) before which the next
# attempt is refused.

@dataclass(frozen=True)
class Backoff:
    """The first ``free`` failures under a key cost nothing; after that each
    failure doubles the wait before the next attempt (``base`` seconds, then
    twice that, ...) up to ``cap``. After ``quiet`` seconds without an
    attempt the failures are forgotten, so a lock never outlives the attack
    by long."""

    free: int = 3
    base: int = 1
    cap: int = 900
    quiet: int = 3600

    def wait(self, failures: int) -> int:
        if failures < self.free:
            return 0
        return min(self.cap, self.base * 2 ** min(failures - self.free, 30))


def _too_many(retry_after: int) -> Problem:
    return Problem(429, "too_many_requests", "Too many attempts; wait a moment and try again.",
                   headers={"Retry-After": str(max(1, retry_after))})


def charge(session: Session, key: str, backoff: Backoff, now: datetime) -> None:
    """Count an attempt under ``key`` as a failure before it is made (forget
    it with :func:`forget` when it succeeds), or raise 429 while the wait of
    earlier failures runs. Counted first, under a row lock, so that guesses
    sent all at once wait like guesses sent one by one. Commits."""
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    # The row must exist to be locked; on SQLite the INSERT alone takes the
    # database's write lock until the commit.
    session.execute(insert(RateLimit).values(key=key, window_start=0, hits=0)
                    .on_conflict_do_nothing(index_elements=[RateLimit.key]))
    row = session.execute(select(RateLimit).where(RateLimit.key == key).with_for_update()).scalar_one()
    stamp = int(now.timestamp())
    if stamp < row.window_start:
        session.commit()
        # ``now`` was read before this request waited for the row lock, so
        # it may be a little older than the failure that set the wait:
        # never ask for more than that wait.
        raise _too_many(min(row.window_start - stamp, backoff.wait(row.hits)))
    failures = 0 if stamp >= row.window_start + backoff.quiet else row.hits
    row.hits = failures + 1
    row.window_start = stamp + backoff.wait(row.hits)
    session.commit()


def forget(session: Session, key: str) -> None:
    """The attempt charged under ``key`` succeeded: no failures are left.
    Does not commit."""
    session.execute(delete(RateLimit).where(RateLimit.key == key))


def mark(session: Session, key: str, now: datetime) -> None:
    """Note that something succeeded under ``key`` now (see :func:`marked_since`).
    Does not commit."""
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    stamp = int(now.timestamp())
    statement = insert(RateLimit).values(key=key, window_start=stamp, hits=1)
    session.execute(statement.on_conflict_do_update(
        index_elements=[RateLimit.key], set_={"window_start": stamp, "hits": 1}))


def marked_since(session: Session, key: str, since: datetime) -> bool:
    """Whether :func:`mark` noted ``key`` at or after ``since``."""
    stamp = session.scalar(select(RateLimit.window_start).where(RateLimit.key == key))
    return stamp is not None and stamp >= int(since.timestamp())
