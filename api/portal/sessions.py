"""Server-side browser sessions for the web pages, stored in the database.

The cookie carries only a random token (``secrets.token_urlsafe``); the
session's contents (user, CSRF token, language, flashed messages) stay in the
``portal_sessions`` table under the token's SHA-256. Every gunicorn worker
reads the same table, logging out deletes the row, and a session ends after
``PORTAL_SESSION_IDLE_SECONDS`` without a request or
``PORTAL_SESSION_MAX_SECONDS`` after it started.

The session is loaded lazily: a request that never touches ``flask.session``
(every API request) costs no query and sets no cookie.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete

from .. import database
from ..models import PortalSession, utcnow

# Refreshing "last seen" on every page view would be a write per click; once
# a minute keeps the idle timeout accurate to a minute.
TOUCH_EVERY = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_name(app: Flask) -> str:
    # "__Host-" makes browsers insist on Secure, Path=/ and no Domain, so a
    # sibling subdomain cannot plant or overwrite the cookie.
    return "__Host-portal" if app.config["PORTAL_COOKIE_SECURE"] else "portal"


class StoredSession(SessionMixin):
    """``flask.session`` for the web pages: a dict backed by a table row."""

    def __init__(self, token: str | None):
        self.token = token
        self._data: dict[str, Any] | None = None
        self._row_created: datetime | None = None
        self._row_last_seen: datetime | None = None
        self.new = token is None
        self.modified = False
        #: True when the browser sent a session cookie whose session has
        #: ended (timed out or logged out elsewhere).
        self.expired = False
        self._ended = False
        self._old_token: str | None = None

    # --- the mapping, loaded on first use ---------------------------------

    def _loaded(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {}
            if self.token is not None:
                self._load()
        return self._data

    def _load(self) -> None:
        row = database.session().get(PortalSession, token_hash(self.token))
        now = utcnow()
        if row is None or row.expires_at <= now:
            self.expired = True
            self.token = None
            self.new = True
            return
        self._data = dict(row.data or {})
        self._row_created = row.created_at
        self._row_last_seen = row.last_seen_at

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._loaded()[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._loaded()[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def clear(self) -> None:
        self._loaded().clear()
        self.modified = True

    # --- lifecycle --------------------------------------------------------

    def regenerate(self) -> None:
        """A new token for the same contents, at login: a token planted or
        seen before login is worth nothing after it (session fixation)."""
        self._loaded()
        if self.token is not None and self._old_token is None:
            self._old_token = self.token
        self.token = None
        self.new = True
        self._row_created = None
        self.modified = True

    def end(self) -> None:
        """Log out: the row is deleted and the cookie removed."""
        self._loaded()
        self._ended = True
        self.modified = True

    @property
    def loaded(self) -> bool:
        return self._data is not None


class DatabaseSessionInterface(SessionInterface):
    """Flask's session interface over the ``portal_sessions`` table."""

    def open_session(self, app: Flask, request: Request) -> StoredSession:
        return StoredSession(request.cookies.get(cookie_name(app)) or None)

    def save_session(self, app: Flask, session: StoredSession, response: Response) -> None:
        if not session.loaded:
            return  # never used in this request: nothing to read or write
        response.vary.add("Cookie")
        name = cookie_name(app)
        now = utcnow()
        idle = timedelta(seconds=app.config["PORTAL_SESSION_IDLE_SECONDS"])
        lifetime = timedelta(seconds=app.config["PORTAL_SESSION_MAX_SECONDS"])
        db = database.session()
        # Whatever the view left uncommitted is discarded at teardown anyway
        # (the session closes); roll it back now so the session row can be
        # written even after a failed transaction.
        db.rollback()
        if session._old_token is not None:
            db.execute(delete(PortalSession).where(PortalSession.id == token_hash(session._old_token)))
        if session._ended:
            if session.token is not None:
                db.execute(delete(PortalSession).where(PortalSession.id == token_hash(session.token)))
            db.commit()
            self._delete_cookie(app, response, name)
            return
        data = session._data
        if session.token is None:
            if not data and not session.modified:
                if session.expired:
                    self._delete_cookie(app, response, name)
                db.commit()
                return
            # Sweep ended sessions whenever one starts: the index on
            # expires_at keeps it cheap, and no scheduler is needed.
            db.execute(delete(PortalSession).where(PortalSession.expires_at <= now))
            session.token = secrets.token_urlsafe(32)
            db.add(PortalSession(
                id=token_hash(session.token), user_id=data.get("user_id"), data=data,
                created_at=now, last_seen_at=now, expires_at=min(now + idle, now + lifetime),
            ))
            db.commit()
            self._set_cookie(app, response, name, session.token)
            return
        if session.modified or now - session._row_last_seen >= TOUCH_EVERY:
            row = db.get(PortalSession, token_hash(session.token))
            if row is not None:
                row.data = data
                row.user_id = data.get("user_id")
                row.last_seen_at = now
                row.expires_at = min(now + idle, session._row_created + lifetime)
            db.commit()

    def _set_cookie(self, app: Flask, response: Response, name: str, token: str) -> None:
        # No Max-Age: the cookie ends with the browser; the server decides
        # how long the session itself lives.
        response.set_cookie(
            name, token, path="/", secure=app.config["PORTAL_COOKIE_SECURE"],
            httponly=True, samesite="Lax",
        )

    def _delete_cookie(self, app: Flask, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path="/", secure=app.config["PORTAL_COOKIE_SECURE"], httponly=True, samesite="Lax",
        )
