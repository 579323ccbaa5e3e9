"""Secrets that sign, encrypted at rest with a key kept outside the database.

Two kinds of secret sign on the system's behalf: the Ed25519 private keys
of the keyring (QR payloads, access tokens; api/keys.py) and the webhooks'
signing secrets (api/services/webhooks.py). Whoever holds one can forge
what it signs, so a copy of the database alone must not yield them: each is
stored as a Fernet token (AES-128-CBC + HMAC-SHA256, from ``cryptography``)
under ``SIGNING_KEY_ENCRYPTION_KEYS``, which lives in the environment, never
in the database.

``SIGNING_KEY_ENCRYPTION_KEYS`` lists Fernet keys, newest first: the newest
encrypts, every one decrypts (MultiFernet). To rotate, put a new key in
front, restart, run ``flask --app api reencrypt-signing-keys``, then drop
the old key. The cipher travels with the app's database sessions
(``session.info``), like the audit chain's key, so worker threads without
an app context (the webhook worker) can open the secrets too.
"""
from __future__ import annotations

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import text
from sqlalchemy.orm import Session

SESSION_INFO = "secret_cipher"


def cipher_of(session: Session) -> MultiFernet:
    """The cipher of the app whose sessionmaker made ``session``."""
    try:
        return session.info[SESSION_INFO]
    except KeyError:
        raise RuntimeError("this database session carries no SIGNING_KEY_ENCRYPTION_KEYS cipher") from None


def seal(cipher: MultiFernet, secret: str) -> str:
    return cipher.encrypt(secret.encode()).decode()


def unseal(cipher: MultiFernet, sealed: str) -> str:
    try:
        return cipher.decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise RuntimeError("a signing secret was encrypted with a key not in SIGNING_KEY_ENCRYPTION_KEYS") from None


# The columns that hold sealed secrets, with their table's key column.
SEALED_COLUMNS = (("signing_keys", "kid", "private_key"), ("webhooks", "id", "secret"))


def reseal_all(session: Session, batch: int = 500) -> int:
    """Encrypt every sealed secret again with the newest key; commits each
    batch. Returns how many were re-encrypted."""
    cipher = cipher_of(session)
    done = 0
    for table, key, column in SEALED_COLUMNS:
        last = ""
        while True:
            rows = session.execute(text(
                f"SELECT {key}, {column} FROM {table} WHERE {key} > :last AND {column} IS NOT NULL "
                f"ORDER BY {key} LIMIT :batch"), {"last": last, "batch": batch}).all()
            if not rows:
                break
            for row_key, sealed in rows:
                session.execute(text(f"UPDATE {table} SET {column} = :value WHERE {key} = :key"),
                                {"value": cipher.rotate(sealed.encode()).decode(), "key": row_key})
            session.commit()
            done, last = done + len(rows), rows[-1][0]
    return done
