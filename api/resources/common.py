"""What many views share: the keyring, ETags, idempotent writes."""
from __future__ import annotations

import hashlib
from typing import Callable

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from .. import database
from ..auth import current_principal, unread_device
from ..problems import Problem
from ..services import idempotency

IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Retries with the same key and body replay the first response",
}


def keyring():
    return current_app.extensions["keyring"]


def idempotent(body, produce: Callable[..., tuple[object, int]], headers_of=None,
               dump: Callable[[object], dict] = lambda made: made, *, answers_early: bool = False) -> Response:
    """Run a write once per ``Idempotency-Key`` and commit it.

    ``produce`` does the write without committing (or commits it with its
    last statement, as a scan does: the commit here then has nothing left
    to do) and returns what it made and the status; ``dump`` turns that
    into the JSON body. With a key, the response is stored in the same
    transaction, so a retry replays it; the same key with another body is
    a 422. Two retries racing each other both get the first one's answer.

    ``answers_early``: ``produce`` takes a callable (None without a key)
    and calls it with what it will make and the status just before the
    write that takes the counters, so that the answer is stored before
    then, not while every other writer waits; a write rolled back after it,
    to be tried again, calls it again.

    Without a key the body is made after the commit: a write that took its
    numbers in its own statement holds the counters every writer waits for
    until it commits (api/services/audit.py), and serialising a form is no
    reason to make them wait (the session keeps its objects as written:
    expire_on_commit is off). A dump that failed there, a bug, would answer
    500 for a write that stands, which a retry then meets as any retry does
    (a re-scan's verdict, the invoice's 409).
    """
    session = database.session()
    key = request.headers.get("Idempotency-Key")
    if key is None:
        try:
            made, status = produce(None) if answers_early else produce()
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Problem(409, "conflict", "Another request changed the same data at the same moment; retry.")
        return _json(dump(made), status, headers_of)
    key = idempotency.check_key(key)
    body_hash = idempotency.request_hash(body, current_app.config["PASSPORT_HASH_KEY"].encode())
    device = unread_device()
    if device is not None:  # its row read with the stored answer, which it sees once authenticated
        principal, stored = idempotency.replay_for_device(session, device, key, body_hash, body)
        owner = principal.actor
    else:
        owner = current_principal().actor
        stored = idempotency.replay(session, owner, key, body_hash, body)
    if stored is not None:
        return _json(stored.response_body, stored.status_code, headers_of, replayed=True)
    early = []

    def remember(made, status):
        payload = dump(made)
        if not idempotency.remember(session, owner, key, body_hash, status, payload):
            # Another request stored its response under the key first.
            raise Problem(409, "conflict", "Another request changed the same data at the same moment; retry.")
        early[:] = [session.get_transaction(), made, payload]
        return payload

    try:
        made, status = produce(remember) if answers_early else produce()
        if early and early[0] is session.get_transaction():
            if early[1] is not made:
                raise RuntimeError("the answer stored before the write is not the one made")
            payload = early[2]
        else:  # stored now (or stored early by a transaction that rolled back)
            payload = remember(made, status)
        session.commit()
    except (IntegrityError, Problem) as clash:
        if isinstance(clash, Problem) and clash.status != 409:
            raise
        session.rollback()
        # A retry with the same key that ran at the same moment wrote first.
        stored = idempotency.replay(session, owner, key, body_hash, body)
        if stored is not None:
            return _json(stored.response_body, stored.status_code, headers_of, replayed=True)
        if isinstance(clash, Problem):
            raise
        raise Problem(409, "conflict", "Another request changed the same data at the same moment; retry.")
    return _json(payload, status, headers_of)


def _json(payload, status, headers_of, *, replayed=False) -> Response:
    response = jsonify(payload)
    response.status_code = status
    for name, value in (headers_of(payload) if headers_of else {}).items():
        response.headers[name] = value
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def form_etag(form) -> str:
    """Changes whenever the form does: clients send it back in If-Match so
    an action on a form they saw is refused (412) if it changed meanwhile.
    Takes a Form or its JSON body (the same tag for both)."""
    if isinstance(form, dict):
        parts = (form["id"], form["status"], form["updated_at"])
        removed = form.get("personal_data_removed_at")
    else:
        parts = (form.id, form.status, form.updated_at.isoformat())
        removed = form.personal_data_removed_at and form.personal_data_removed_at.isoformat()
    if removed:  # the representation changed, the status did not
        parts += (removed,)
    digest = hashlib.sha256("|".join(parts).encode())
    return f'"{digest.hexdigest()[:24]}"'


def check_if_match(form) -> None:
    """Honour an optional If-Match header on an action on ``form``."""
    if_match = request.if_match
    if if_match and not if_match.star_tag and not if_match.contains_raw(form_etag(form)):
        raise Problem(412, "precondition_failed",
                      "The form changed since you read it; reload it and try again.")


def with_etag(form):
    """A view's return value: ``form`` with its ETag header."""
    return form, 200, {"ETag": form_etag(form)}
