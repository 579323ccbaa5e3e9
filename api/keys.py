"""The signing keyring: Ed25519 keys in the database, shared by every worker.

Keys serve one purpose each and are rotated apart (``flask --app api
rotate-keys --purpose qr|access-token``):

- QR keys sign the QR payloads printed on forms, which stay in travellers'
  pockets for months;
- access-token keys sign the API's access tokens, which live an hour.

An access token never verifies with a QR key, nor a QR payload with an
access-token key; the ``kid`` says which is which (``qr-``, ``at-``:
shared/qrtoken.py), so kiosks holding the published JWKS tell them apart
too.

The newest key of a purpose signs. Its private half is stored encrypted
(api/custody.py) and only while it signs: rotation erases it, so a later
copy of the database does not even hold the encrypted key. A key rotated
out keeps verifying for as long as something it signed can still be shown:

- an access-token key: the token lifetime (``ACCESS_TOKEN_TTL``), from the
  moment every worker has stopped signing with it;
- a QR key: until the last export deadline of any form it signed
  (``forms.qr_kid``) or could still sign in the moments after the rotation,
  plus the days an offline kiosk may take to send a scan made before the
  deadline (``scans.MAX_OFFLINE``).

``verifies_until`` holds that moment; past it the key is no longer
published in the JWKS or accepted. Nothing verifies with a key that is not
published, and the JWKS publishes nothing that does not verify.
"""
from __future__ import annotations

import secrets
import threading
import time
from datetime import date, datetime, time as clock_time, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from shared import qrtoken, rules

from . import custody
from .models import Form, SigningKey, utcnow
from .services.scans import MAX_OFFLINE

QR, ACCESS_TOKEN = qrtoken.QR, qrtoken.ACCESS_TOKEN
PURPOSES = (QR, ACCESS_TOKEN)
# How long a worker may go on using the keys it loaded (Keyring.ttl): after
# a rotation, other workers sign with the old key for up to this long.
CACHE_SECONDS = 30.0


def _new_kid(purpose: str, now: datetime) -> str:
    # Purpose prefix for verifiers, date for people, a random suffix so two
    # rotations a day stay distinct.
    return f"{qrtoken.KID_PREFIXES[purpose]}{now:%Y-%m-%d}-{secrets.token_hex(3)}"


def add_key(session: Session, purpose: str = QR, now: datetime | None = None) -> SigningKey:
    """Create a new signing key for ``purpose``; it signs from now on."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    now = now or utcnow()
    private = qrtoken.new_private_key()
    kid = _new_kid(purpose, now)
    key = SigningKey(
        kid=kid,
        purpose=purpose,
        private_key=custody.seal(custody.cipher_of(session), qrtoken.private_key_to_pem(private)),
        public_jwk=qrtoken.public_jwk(private, kid),
        created_at=now,
    )
    session.add(key)
    return key


def signer(session: Session, purpose: str = QR) -> SigningKey | None:
    """The key that signs for ``purpose``: the newest one still holding its
    private half."""
    return session.scalar(
        select(SigningKey)
        .where(SigningKey.purpose == purpose, SigningKey.private_key.is_not(None),
               SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
        .limit(1)
    )


def _verifying(now: datetime):
    return and_(SigningKey.retired_at.is_(None),
                or_(SigningKey.verifies_until.is_(None), SigningKey.verifies_until > now))


def active_keys(session: Session, purpose: str | None = None, now: datetime | None = None) -> list[SigningKey]:
    """The keys that verify now (of ``purpose``, or of both), newest first."""
    query = select(SigningKey).where(_verifying(now or utcnow()))
    if purpose is not None:
        query = query.where(SigningKey.purpose == purpose)
    return list(session.scalars(query.order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())))


def qr_needed_until(deadline: date) -> datetime:
    """Until when a QR key must verify for a form whose export deadline is
    ``deadline``: a day past the deadline's end in any time zone, plus the
    time an offline kiosk may take to send a scan made before it."""
    return datetime.combine(deadline + timedelta(days=2), clock_time(), timezone.utc) + MAX_OFFLINE


def last_deadline_signed(session: Session, kid: str) -> date | None:
    """The latest export deadline of the forms ``kid`` signed."""
    return session.scalar(select(func.max(Form.export_deadline)).where(Form.qr_kid == kid))


def _qr_verifies_until(session: Session, kid: str, ruleset: rules.RuleSet, now: datetime) -> datetime:
    # Forms it signed, and any form other workers may still sign with it
    # until their cache expires: bought today (tomorrow in the rules' time
    # zone at the latest), with the rules' deadline.
    latest_purchase = rules.local_today(now + timedelta(seconds=CACHE_SECONDS), ruleset.timezone)
    deadlines = [rules.export_deadline(latest_purchase, ruleset.export_months)]
    signed = last_deadline_signed(session, kid)
    if signed is not None:
        deadlines.append(signed)
    return qr_needed_until(max(deadlines))


def rotate(session: Session, purpose: str, *, access_token_ttl: int, ruleset: rules.RuleSet,
           now: datetime | None = None) -> SigningKey:
    """Add a new signing key for ``purpose``; the one it replaces stops
    signing (its private half is erased) and verifies as long as needed.
    Keys whose time has passed are marked retired."""
    now = now or utcnow()
    previous = signer(session, purpose)
    new = add_key(session, purpose, now)
    if previous is not None:
        previous.private_key = None
        if purpose == ACCESS_TOKEN:
            previous.verifies_until = now + timedelta(seconds=CACHE_SECONDS + access_token_ttl)
        else:
            previous.verifies_until = _qr_verifies_until(session, previous.kid, ruleset, now)
    retire_expired(session, now)
    session.flush()
    return new


def retire_expired(session: Session, now: datetime) -> list[str]:
    """Mark keys past ``verifies_until`` retired (they already no longer
    verify); returns their kids."""
    expired = session.scalars(select(SigningKey).where(
        SigningKey.retired_at.is_(None), SigningKey.verifies_until <= now)).all()
    for key in expired:
        key.retired_at, key.private_key = now, None
    return [key.kid for key in expired]


def ensure_key(session: Session) -> None:
    """Make a signing key for each purpose that has none (a new database)."""
    added = False
    for purpose in PURPOSES:
        if signer(session, purpose) is None:
            add_key(session, purpose)
            added = True
    if added:
        session.commit()


class Keyring:
    """A per-process cache of the keys that sign and verify, refreshed every
    ``ttl`` seconds so a rotation done by another process is seen soon
    after, and at once when a cached key's time to verify runs out."""

    def __init__(self, ttl: float = CACHE_SECONDS):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._stale_at: datetime | None = None
        self._signing: dict[str, tuple[str, Ed25519PrivateKey]] = {}
        self._jwks: dict = {"keys": []}
        self._keysets = {purpose: qrtoken.KeySet({"keys": []}, purpose) for purpose in PURPOSES}

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def _fresh(self) -> bool:
        return (time.monotonic() - self._loaded_at < self.ttl
                and (self._stale_at is None or utcnow() < self._stale_at))

    def _refresh(self, session: Session, force: bool = False) -> None:
        if not force and self._fresh():
            return
        with self._lock:
            now = utcnow()
            signers = {purpose: signer(session, purpose) for purpose in PURPOSES}
            if None in signers.values():
                # A database migrated without init-db: make the first keys in
                # a session of its own, never committing the caller's work.
                with Session(session.get_bind(), info=session.info) as own:
                    ensure_key(own)
                signers = {purpose: signer(session, purpose) for purpose in PURPOSES}
            cipher = custody.cipher_of(session)
            self._signing = {
                purpose: (key.kid, qrtoken.private_key_from_pem(custody.unseal(cipher, key.private_key)))
                for purpose, key in signers.items()
            }
            keys = active_keys(session, now=now)
            self._jwks = {"keys": [k.public_jwk for k in keys]}
            # The purpose comes from the database, not from the kid: a key's
            # row is what the system trusts.
            self._keysets = {
                purpose: qrtoken.KeySet({"keys": [k.public_jwk for k in keys if k.purpose == purpose]}, purpose)
                for purpose in PURPOSES
            }
            ends = [k.verifies_until for k in keys if k.verifies_until is not None]
            self._stale_at = min(ends) if ends else None
            self._loaded_at = time.monotonic()

    def signing_key(self, session: Session, purpose: str = QR) -> tuple[str, Ed25519PrivateKey]:
        """The kid and private key that sign for ``purpose`` (QR payloads
        unless told otherwise)."""
        self._refresh(session)
        return self._signing[purpose]

    def jwks(self, session: Session) -> dict:
        """Every key that verifies now, of both purposes, newest first."""
        self._refresh(session)
        return self._jwks

    def verifying(self, session: Session, purpose: str = QR) -> "_Verifying":
        """The keys that verify for ``purpose``, looked up by kid as a token
        is verified: a kid not among them reloads the keys first (as
        ``keyset`` does), so a key another process just added verifies
        without the token being read once more to learn its kid."""
        return _Verifying(self, session, purpose)

    def keyset(self, session: Session, kid: str | None = None, purpose: str = QR) -> qrtoken.KeySet:
        """The keys that verify for ``purpose`` (QR payloads unless told
        otherwise); reloads at once when ``kid`` is not among them (a key
        added by another process since the last refresh)."""
        self._refresh(session)
        keyset = self._keysets[purpose]
        # At most one forced reload a second, so a stream of forged kids
        # cannot turn into a stream of database queries.
        if kid is not None and kid not in keyset and time.monotonic() - self._loaded_at > 1.0:
            self._refresh(session, force=True)
        return self._keysets[purpose]


class _Verifying:
    """``Keyring.verifying``: what ``qrtoken.verify_form_token`` asks of its keys."""

    __slots__ = ("_keyring", "_session", "_purpose")

    def __init__(self, keyring: Keyring, session: Session, purpose: str) -> None:
        self._keyring, self._session, self._purpose = keyring, session, purpose

    def get(self, kid: str):
        return self._keyring.keyset(self._session, kid, self._purpose).get(kid)
