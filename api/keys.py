"""The signing keyring: Ed25519 keys in the database, shared by every worker.

The newest unretired key signs QR payloads and access tokens; every unretired
key verifies and is published in the JWKS. ``rotate-keys`` adds a key and
retires keys older than the previous one, so tokens signed just before a
rotation keep verifying.
"""
from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import qrtoken

from .models import SigningKey, utcnow


def _new_kid(now: datetime) -> str:
    # Date for people, a random suffix so two rotations a day stay distinct.
    return f"{now:%Y-%m-%d}-{secrets.token_hex(3)}"


def add_key(session: Session) -> SigningKey:
    """Create a new signing key; it signs from now on."""
    private = qrtoken.new_private_key()
    now = utcnow()
    kid = _new_kid(now)
    key = SigningKey(
        kid=kid,
        private_key_pem=qrtoken.private_key_to_pem(private),
        public_jwk=qrtoken.public_jwk(private, kid),
        created_at=now,
    )
    session.add(key)
    return key


def rotate(session: Session) -> SigningKey:
    """Add a new current key; keep the previous one verifying and retire
    every older one."""
    live = active_keys(session)
    new = add_key(session)
    for old in live[1:]:
        old.retired_at = utcnow()
    session.flush()
    return new


def active_keys(session: Session) -> list[SigningKey]:
    """Unretired keys, newest first."""
    return list(
        session.scalars(
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
        )
    )


def ensure_key(session: Session) -> None:
    if not active_keys(session):
        add_key(session)
        session.commit()


class Keyring:
    """A per-process cache of the active keys, refreshed every ``ttl``
    seconds so a rotation done by another process is seen soon after."""

    def __init__(self, ttl: float = 30.0):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._signing: tuple[str, Ed25519PrivateKey] | None = None
        self._jwks: dict = {"keys": []}
        self._keyset = qrtoken.KeySet(self._jwks)

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def _refresh(self, session: Session, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.ttl:
            return
        with self._lock:
            keys = active_keys(session)
            if not keys:
                # A database migrated without init-db: make the first key in
                # a session of its own, never committing the caller's work.
                with Session(session.get_bind()) as own:
                    ensure_key(own)
                keys = active_keys(session)
            newest = keys[0]
            self._signing = (newest.kid, qrtoken.private_key_from_pem(newest.private_key_pem))
            self._jwks = {"keys": [k.public_jwk for k in keys]}
            self._keyset = qrtoken.KeySet(self._jwks)
            self._loaded_at = time.monotonic()

    def signing_key(self, session: Session) -> tuple[str, Ed25519PrivateKey]:
        self._refresh(session)
        assert self._signing is not None
        return self._signing

    def jwks(self, session: Session) -> dict:
        self._refresh(session)
        return self._jwks

    def keyset(self, session: Session, kid: str | None = None) -> qrtoken.KeySet:
        """The verifying keys; reloads at once when ``kid`` is not among them
        (a key added by another process since the last refresh)."""
        self._refresh(session)
        # At most one forced reload a second, so a stream of forged kids
        # cannot turn into a stream of database queries.
        if kid is not None and kid not in self._keyset and time.monotonic() - self._loaded_at > 1.0:
            self._refresh(session, force=True)
        return self._keyset

