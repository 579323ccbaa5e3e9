"""Fixed-window rate limits kept in the database.

The counters live in the database every worker shares, so a limit holds
across gunicorn workers and machines; Flask-Limiter would need Redis or
memcached for that, which this deployment does not otherwise run.
"""
from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import case
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

