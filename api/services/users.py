"""Turning a user's access off and on, and their password, so that what
they held before stops working at once.

Each change bumps the user's ``token_version``: access tokens carry the
version they were issued under and older ones are refused on the next
request (``api.auth``); the user's web sessions are deleted. Each change is
an event in the audit trail, naming who made it.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from .. import auth, passwords
from ..models import PortalSession, User
from ..problems import Problem
from . import audit


def check_password(password: str, username: str | None) -> None:
    """A 422 problem naming what is wrong with a new password."""
    found = passwords.problems(password, username)
    if found:
        raise Problem(422, "weak_password", found[0], errors={"password": found})


def _revoke(session: Session, user: User) -> None:
    user.token_version = (user.token_version or 0) + 1
    session.execute(delete(PortalSession).where(PortalSession.user_id == user.id))


def _record(session: Session, user: User, type_: str, actor: str, now: datetime) -> None:
    audit.record(session, None, type_, actor, at=now, user=user.username, user_id=user.id)


def disable(session: Session, user: User, actor: str, now: datetime) -> None:
    """The user can no longer log in; their tokens and sessions end now."""
    if user.disabled_at is None:
        user.disabled_at = now
    _revoke(session, user)
    _record(session, user, "user.disabled", actor, now)


def enable(session: Session, user: User, actor: str, now: datetime) -> None:
    """The user may log in again (with a new login: old tokens stay dead)."""
    user.disabled_at = None
    _record(session, user, "user.enabled", actor, now)


def set_password(session: Session, user: User, password: str, actor: str, now: datetime) -> None:
    """A new password (it must pass the policy); every token and session
    made with the old one ends."""
    check_password(password, user.username)
    user.password_hash = auth.hash_password(password)
    _revoke(session, user)
    _record(session, user, "user.password_set", actor, now)


def set_role(session: Session, user: User, role: str, actor: str, now: datetime) -> None:
    """Another role; tokens issued for the old one end."""
    if role not in auth.ROLES:
        raise ValueError(f"unknown role {role}")
    user.role = role
    _revoke(session, user)
    _record(session, user, "user.role_set", actor, now)
