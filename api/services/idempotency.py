"""``Idempotency-Key``: a retried write replays its first response.

The record is written in the same transaction as the write it protects, so a
request either happened with its record or did not happen at all. The same key
with another body is a client error (422), never a silent second write.
"""
from __future__ import annotations

import hashlib
import json

from sqlalchemy.orm import Session

from ..models import IdempotencyRecord
from ..problems import Problem

MAX_KEY_LENGTH = 255


def request_hash(body) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Problem(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
        )
    return key


def replay(session: Session, owner: str, key: str, body_hash: str) -> IdempotencyRecord | None:
    """The stored first response for ``key``, or None if the key is new."""
    record = session.get(IdempotencyRecord, (owner, key))
    if record is not None and record.request_hash != body_hash:
        raise Problem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    return record


def remember(session: Session, owner: str, key: str, body_hash: str, status: int, body) -> None:
    session.add(
        IdempotencyRecord(
            owner=owner, key=key, request_hash=body_hash, status_code=status, response_body=body
        )
    )
