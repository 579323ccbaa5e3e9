"""Passport numbers encrypted at rest, with keys that rotate without downtime.

The column holds a Fernet token (AES-128-CBC + HMAC-SHA256, from
``cryptography``). ``PASSPORT_KEYS`` lists the keys, newest first: the newest
encrypts, every one decrypts (MultiFernet), so a new key can be added, the
rows re-encrypted with ``flask --app api reencrypt-personal-data``, and the
old key dropped afterwards, while the API keeps serving. Lookups never need
the number itself: they use the keyed hash in ``forms.passport_key``.

Rows written before encryption (plain passport numbers: capital letters and
digits, never the ``gAAAAA`` a Fernet token starts with) are read as they
are until re-encrypted.
"""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import String, Text, TypeDecorator

TOKEN_PREFIX = "gAAAAA"


def cipher_from_keys(keys: str) -> MultiFernet:
    """A cipher from comma-separated Fernet keys, newest first."""
    return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])


def _cipher() -> MultiFernet:
    return current_app.extensions["passport_cipher"]


class EncryptedText(TypeDecorator):
    """A string column stored encrypted with the app's passport keys."""

    impl = String(255)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return _cipher().encrypt(value.encode()).decode()

    def process_result_value(self, value, dialect):
        if value is None or not value.startswith(TOKEN_PREFIX):
            return value
        try:
            return _cipher().decrypt(value.encode()).decode()
        except InvalidToken:
            raise RuntimeError("a passport number was encrypted with a key not in PASSPORT_KEYS") from None


class EncryptedJSON(TypeDecorator):
    """A JSON document stored encrypted with the app's passport keys (the
    stored responses of idempotent requests, which may hold a whole form).
    Documents stored before encryption are read as they are until
    re-encrypted."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return _cipher().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if not value.startswith(TOKEN_PREFIX):
            return json.loads(value)
        try:
            return json.loads(_cipher().decrypt(value.encode()))
        except InvalidToken:
            raise RuntimeError("a stored response was encrypted with a key not in PASSPORT_KEYS") from None


def reencrypt(raw: str | None) -> str | None:
    """The stored value re-encrypted with the newest key (plain values are
    encrypted for the first time)."""
    if raw is None:
        return None
    cipher = _cipher()
    if raw.startswith(TOKEN_PREFIX):
        return cipher.rotate(raw.encode()).decode()
    return cipher.encrypt(raw.encode()).decode()
