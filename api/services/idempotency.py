"""``Idempotency-Key``: a retried write replays its first response.

The record is written in the same transaction as the write it protects, so a
request either happened with its record or did not happen at all. The same key
with another body is a client error (422), never a silent second write.

A copy of the table gives away nothing about travellers: the stored response
(a POST /forms response is the whole form) is encrypted with the passport
keys (``models.IdempotencyRecord``), and the request is known only by a hash
keyed with a secret kept outside the database.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import auth
from ..database import HotStatement
from ..models import Device, IdempotencyRecord, utcnow
from ..problems import Problem

MAX_KEY_LENGTH = 255


def _canonical(body) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def request_hash(body, secret: bytes) -> str:
    """A keyed hash of the request body: a plain hash of a passport scan
    (a passport number and a time) could be reversed by trying every
    number, so a copy of the database must not be enough to compute it."""
    return hmac.new(secret, b"idempotency-request:" + _canonical(body), hashlib.sha256).hexdigest()


def _legacy_hash(body) -> str:
    # Records written before the hash was keyed, replayed until they age
    # out (purge-personal-data).
    return hashlib.sha256(_canonical(body)).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Problem(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
        )
    return key


_RECORDS = IdempotencyRecord.__table__
# Hot statements, built once: every write sent with a key (every kiosk
# scan) runs both.
_STORED = HotStatement(select(_RECORDS.c.request_hash, _RECORDS.c.status_code, _RECORDS.c.response_body).where(
    _RECORDS.c.owner == bindparam("owner"), _RECORDS.c.key == bindparam("key")))


class Stored(NamedTuple):
    """The first response to a request with a key."""

    request_hash: str
    status_code: int
    response_body: dict


def _insert(dialect):
    return HotStatement(
        dialect.insert(_RECORDS).values({name: bindparam(name) for name in _RECORDS.c.keys()})
        .on_conflict_do_nothing(index_elements=[_RECORDS.c.owner, _RECORDS.c.key]).returning(_RECORDS.c.key))


_REMEMBER = {"postgresql": _insert(postgresql), "sqlite": _insert(sqlite)}


def replay(session: Session, owner: str, key: str, body_hash: str, body) -> Stored | None:
    """The stored first response for ``key`` (its ``status_code`` and
    ``response_body``), or None if the key is new."""
    row = _STORED.execute(session, {"owner": owner, "key": key}).fetchone()
    return _same_request(None if row is None else Stored(*row), body_hash, body)


# A device whose row is not read yet (a kiosk's scan): its row and the
# answer stored for the key in one statement.
_DEVICE_AND_STORED = HotStatement(
    select(*auth.device_columns(), _RECORDS.c.request_hash, _RECORDS.c.status_code, _RECORDS.c.response_body)
    .select_from(auth.device_and_exit_point().outerjoin(
        _RECORDS, (_RECORDS.c.owner == bindparam("owner")) & (_RECORDS.c.key == bindparam("key"))))
    .where(Device.__table__.c.id == bindparam("device_id")))


def replay_for_device(session: Session, device: auth.UnreadDevice, key: str, body_hash: str,
                      body) -> tuple[auth.Principal, Stored | None]:
    """``replay`` for a device not yet authenticated: the device,
    authenticated by its row (a 401 otherwise, the stored answer unseen),
    and the answer it stored for ``key``."""
    principal, stored = device.check_leading(_DEVICE_AND_STORED.execute(
        session, {"device_id": device.id, "owner": device.actor, "key": key}).fetchone())
    return principal, _same_request(None if stored[0] is None else Stored(*stored), body_hash, body)


def _same_request(record: Stored | None, body_hash: str, body) -> Stored | None:
    if record is not None and not (hmac.compare_digest(record.request_hash, body_hash)
                                   or hmac.compare_digest(record.request_hash, _legacy_hash(body))):
        raise Problem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    return record


def remember(session: Session, owner: str, key: str, body_hash: str, status: int, body) -> bool:
    """Store the response for ``key`` in the session's transaction; False,
    and nothing stored, if another request stored one for the key first
    (on PostgreSQL the INSERT waits for that request's transaction to end)."""
    return _REMEMBER[session.get_bind().dialect.name].execute(session, {
        "owner": owner, "key": key, "request_hash": body_hash, "status_code": status, "response_body": body,
        "created_at": utcnow()}).fetchone() is not None
