"""Small things every view needs."""
from __future__ import annotations

from flask import current_app, request

from ..services import idempotency


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    return idempotency.check_key(key) if key is not None else None


def keyring():
    return current_app.extensions["keyring"]
