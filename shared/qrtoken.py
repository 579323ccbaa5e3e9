"""The QR code's payload: a compact signed token naming one tax-free form.

The token is a JWT signed with Ed25519 (``alg: EdDSA``) and carries the signing
key's id (``kid``) in its header, so a kiosk can verify it offline against the
published key set (JWKS) and keys can be rotated: tokens signed with a previous
key keep verifying while that key is still published.

The same JWKS also publishes the keys of the API's access tokens. Each key
serves one purpose, named by the start of its ``kid``: ``qr-`` signs QR
payloads, ``at-`` signs access tokens. Keys made before the two were kept
apart have no prefix and signed QR payloads. A ``KeySet`` holds the keys of
one purpose only, so a payload signed with an access-token key is never a
form, and an access token never verifies with a QR key.

Claims are kept short because every byte makes the QR code denser:
``fid`` (form id), ``rv`` (retailer VAT number) and ``exp`` (the instant the
export deadline ends).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ALGORITHM = "EdDSA"
# The purposes of a signing key and the kid prefix that names each.
QR, ACCESS_TOKEN = "qr", "access_token"
KID_PREFIXES = {QR: "qr-", ACCESS_TOKEN: "at-"}


def purpose_of_kid(kid: str) -> str:
    """The purpose of the key ``kid`` names: access tokens for ``at-``, QR
    payloads for everything else (``qr-`` and the keys made before the
    purposes were kept apart)."""
    return ACCESS_TOKEN if kid.startswith(KID_PREFIXES[ACCESS_TOKEN]) else QR


class TokenRefused(Exception):
    """A scanned payload that is not a valid form token.

    ``reason_code`` says why, in words a kiosk translates for the traveller.
    """

    def __init__(self, reason_code: str, message: str, claims: "FormClaims | None" = None):
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message
        # Set when the token is genuine but refused anyway (deadline passed),
        # so the caller can still tell which form it names.
        self.claims = claims


@dataclass(frozen=True)
class FormClaims:
    """What a verified form token says."""

    form_id: str
    retailer_vat: str
    expires_at: datetime
    kid: str


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def private_key_from_pem(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def public_jwk(key: Ed25519PrivateKey | Ed25519PublicKey, kid: str) -> dict:
    """The public half of ``key`` as a JWK (RFC 8037 OKP key) with ``kid``."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
    jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return jwk


def sign_form_token(
    form_id: str,
    retailer_vat: str,
    expires_at: datetime,
    key: Ed25519PrivateKey,
    kid: str,
) -> str:
    """Sign the QR payload for a form; it stops verifying at ``expires_at``."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    claims = {"fid": form_id, "rv": retailer_vat, "exp": int(expires_at.timestamp())}
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


class KeySet:
    """Public keys of one purpose, indexed by ``kid``: by default those that
    verify form tokens (QR payloads).

    Built from a JWKS document (``{"keys": [...]}``), as served by the API at
    ``/.well-known/jwks.json`` and cached by kiosks for offline use; keys of
    the other purpose in it are left out.
    """

    def __init__(self, jwks: dict, purpose: str = QR):
        self._keys: dict[str, Ed25519PublicKey] = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("kid"), str):
                continue
            if purpose_of_kid(jwk["kid"]) != purpose:
                continue
            self._keys[jwk["kid"]] = jwt.algorithms.OKPAlgorithm.from_jwk(json.dumps(jwk))

    def __contains__(self, kid: str) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)


class Keys(Protocol):
    """What verifying a token asks of its keys: the public key of a kid,
    or None. A ``KeySet``, or a cache that loads a kid it does not hold
    yet."""

    def get(self, kid: str) -> Ed25519PublicKey | None: ...


def unverified_form_id(token: str) -> str | None:
    """The form id a token names, its signature NOT checked: only to tell
    one form's scans apart on a device (a repeat scan, the form a desk
    card is about), never to decide anything."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    form_id = claims.get("fid")
    return form_id if isinstance(form_id, str) else None


def verify_form_token(
    token: str, keys: Keys, now: datetime | None = None
) -> FormClaims:
    """Verify a scanned payload and return its claims, or raise TokenRefused.

    Each way a payload can be wrong has its own reason code, so the traveller
    is told something true: ``malformed_token`` (not a form token at all, e.g.
    truncated or another QR code), ``unknown_key`` (signed by a key this system
    never published or has retired), ``bad_signature`` (altered),
    ``deadline_passed`` (the export deadline is over).
    """
    token = (token or "").strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise TokenRefused("malformed_token", "This is not a tax-free form code.")
    # Only EdDSA (no "none", no HMAC keyed with a public key) and not an API
    # access token ("at+jwt") shown as a QR code.
    if (
        header.get("alg") != ALGORITHM
        or not isinstance(header.get("kid"), str)
        or header.get("typ", "JWT") != "JWT"
    ):
        raise TokenRefused("malformed_token", "This is not a tax-free form code.")
    key = keys.get(header["kid"])
    if key is None:
        raise TokenRefused(
            "unknown_key", "This form was not signed by a known issuer."
        )
    now = now or datetime.now(timezone.utc)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "fid"], "verify_exp": False},
        )
    except jwt.InvalidSignatureError:
        raise TokenRefused("bad_signature", "This form code has been altered.")
    except jwt.InvalidTokenError:
        raise TokenRefused("malformed_token", "This is not a tax-free form code.")
    if not isinstance(claims.get("fid"), str) or not isinstance(claims["exp"], int):
        raise TokenRefused("malformed_token", "This is not a tax-free form code.")
    verified = FormClaims(
        form_id=claims["fid"],
        retailer_vat=str(claims.get("rv", "")),
        expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc),
        kid=header["kid"],
    )
    # The deadline is checked here rather than by PyJWT so the comparison uses
    # the caller's clock (tests, kiosks with a known time source).
    if now >= verified.expires_at:
        raise TokenRefused(
            "deadline_passed", "The export deadline for this form has passed.", verified
        )
    return verified
