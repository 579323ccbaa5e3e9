"""Opaque cursors for keyset pagination.

A cursor holds the sort key of the last item of a page; clients treat it as
an opaque string. Keyset pages stay stable while rows are added, unlike
offsets.
"""
from __future__ import annotations

import base64
import json

from .problems import Problem


def encode(*key) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str, arity: int) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, list) or len(key) != arity:
            raise ValueError
        return key
    except ValueError:
        raise Problem(400, "invalid_cursor", "The cursor is not one this API gave out.",
                      errors={"cursor": ["Not a valid cursor."]})


def page(items: list, limit: int, cursor_of) -> dict:
    """The list envelope; callers fetch ``limit + 1`` rows to know whether
    another page follows."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": cursor_of(items[-1]) if more and items else None}
