"""Small things every view needs."""
from __future__ import annotations

import hashlib

from flask import current_app, request

from ..problems import Problem

from ..services import idempotency


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    return idempotency.check_key(key) if key is not None else None


def keyring():
    return current_app.extensions["keyring"]


def form_etag(form) -> str:
    """Changes whenever the form does: clients send it back in If-Match so
    an action on a form they saw is refused (412) if it changed meanwhile."""
    digest = hashlib.sha256(f"{form.id}|{form.status}|{form.updated_at.isoformat()}".encode())
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
