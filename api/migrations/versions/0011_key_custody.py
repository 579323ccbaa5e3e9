"""key custody: QR and access-token keys apart, signing secrets encrypted at
rest, stored idempotent responses encrypted

- signing_keys: a ``purpose`` per key, ``verifies_until``, and the private
  key encrypted with SIGNING_KEY_ENCRYPTION_KEYS (``private_key``). The keys
  already there signed QR payloads (and access tokens): they become QR keys.
  The newest keeps signing; the others lose their private half and verify
  until the last export deadline of the forms they signed, which brings
  back keys retired while their forms were still within their deadline.
  Access tokens get a key of their own on first use, so users log in again
  once after the upgrade.
- forms.qr_kid: the key that signed each form, read from its QR payload.
- webhooks.secret: encrypted with SIGNING_KEY_ENCRYPTION_KEYS.
- idempotency_records.response_body: text, encrypted with PASSPORT_KEYS on
  write; documents stored before stay readable until ``flask --app api
  reencrypt-personal-data`` encrypts them.

Encrypting what is there needs SIGNING_KEY_ENCRYPTION_KEYS, which ``flask
--app api init-db`` hands over; a plain ``alembic upgrade`` works only on a
database without signing keys and webhooks.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""
from datetime import datetime, timezone

import jwt
import sqlalchemy as sa
from alembic import context, op

import api.models
from api.keys import qr_needed_until
from api.personal_data import cipher_from_keys

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC = api.models.UTCDateTime(timezone=True)
KEYS = sa.table("signing_keys", sa.column("kid", sa.String), sa.column("private_key", sa.Text),
                sa.column("created_at", UTC), sa.column("verifies_until", UTC), sa.column("retired_at", UTC))
FORMS = sa.table("forms", sa.column("id", sa.String), sa.column("qr_payload", sa.Text),
                 sa.column("qr_kid", sa.String), sa.column("export_deadline", sa.Date))
WEBHOOKS = sa.table("webhooks", sa.column("id", sa.String), sa.column("secret", sa.String))


def upgrade() -> None:
    cipher = _cipher_if_needed()
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=16), nullable=False, server_default="qr"))
        batch.add_column(sa.Column("verifies_until", UTC, nullable=True))
        batch.alter_column("private_key_pem", new_column_name="private_key", existing_type=sa.Text(),
                           nullable=True)
        batch.create_check_constraint("purpose", "purpose IN ('qr', 'access_token')")
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("purpose", existing_type=sa.String(length=16), server_default=None)
    with op.batch_alter_table("forms") as batch:
        batch.add_column(sa.Column("qr_kid", sa.String(length=40), nullable=True))
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column("secret", existing_type=sa.String(length=100), type_=sa.String(length=255),
                           existing_nullable=False)
    with op.batch_alter_table("idempotency_records") as batch:
        batch.alter_column("response_body", existing_type=sa.JSON(), type_=sa.Text(), existing_nullable=False,
                           postgresql_using="response_body::text")
    bind = op.get_bind()
    _record_signing_keys(bind)
    if cipher is not None:
        _seal_keys(bind, cipher)
        for hook_id, secret in bind.execute(sa.select(WEBHOOKS.c.id, WEBHOOKS.c.secret)).all():
            bind.execute(WEBHOOKS.update().where(WEBHOOKS.c.id == hook_id)
                         .values(secret=cipher.encrypt(secret.encode()).decode()))


def _cipher_if_needed():
    """The cipher, if there are secrets to encrypt. Asked before anything
    changes: SQLite runs DDL outside the migration's transaction."""
    bind = op.get_bind()
    needed = any(bind.execute(sa.text(f"SELECT 1 FROM {table}")).first() is not None
                 for table in ("signing_keys", "webhooks"))
    if not needed:
        return None
    keys = context.config.attributes.get("signing_key_encryption_keys")
    if not keys:
        raise RuntimeError("encrypting the existing signing keys and webhook secrets needs "
                           "SIGNING_KEY_ENCRYPTION_KEYS: upgrade with flask --app api init-db")
    return cipher_from_keys(keys)


def _kid_of(payload: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(payload).get("kid")
    except jwt.InvalidTokenError:
        return None
    return kid if isinstance(kid, str) and len(kid) <= 40 else None


def _record_signing_keys(bind, batch: int = 2000) -> None:
    """forms.qr_kid from each QR payload's header, a batch at a time."""
    last = ""
    while True:
        rows = bind.execute(sa.select(FORMS.c.id, FORMS.c.qr_payload).where(FORMS.c.id > last)
                            .order_by(FORMS.c.id).limit(batch)).all()
        if not rows:
            return
        by_kid: dict[str, list[str]] = {}
        for form_id, payload in rows:
            kid = _kid_of(payload)
            if kid is not None:
                by_kid.setdefault(kid, []).append(form_id)
        for kid, ids in by_kid.items():
            bind.execute(FORMS.update().where(FORMS.c.id.in_(ids)).values(qr_kid=kid))
        last = rows[-1][0]


def _seal_keys(bind, cipher) -> None:
    """The newest unretired key keeps signing, its private key encrypted;
    the others verify while forms they signed are within their deadline."""
    now = datetime.now(timezone.utc)
    keys = bind.execute(sa.select(KEYS.c.kid, KEYS.c.private_key, KEYS.c.retired_at)
                        .order_by(KEYS.c.created_at.desc(), KEYS.c.kid.desc())).all()
    current = next((k.kid for k in keys if k.retired_at is None), None)
    for kid, pem, retired_at in keys:
        if kid == current:
            bind.execute(KEYS.update().where(KEYS.c.kid == kid)
                         .values(private_key=cipher.encrypt(pem.encode()).decode()))
            continue
        deadline = bind.execute(sa.select(sa.func.max(FORMS.c.export_deadline))
                                .where(FORMS.c.qr_kid == kid)).scalar()
        until = qr_needed_until(deadline) if deadline is not None else now
        bind.execute(KEYS.update().where(KEYS.c.kid == kid).values(
            private_key=None, verifies_until=until,
            retired_at=None if until > now else (retired_at or now)))


def downgrade() -> None:
    raise RuntimeError("key custody cannot be undone: private keys of rotated keys were erased and "
                       "the others are encrypted; restore a backup taken before the upgrade instead")
