"""Who is calling: users with JWT access tokens, devices with device tokens.

User access tokens are short-lived JWTs (RFC 9068 ``at+jwt``) signed with the
keyring's current Ed25519 key. Devices (kiosks, tablets, handhelds) hold a
long-lived opaque token, stored hashed, that survives key rotation and stops
working the moment the device is revoked.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from flask import current_app, g, request
from sqlalchemy import bindparam, select
from werkzeug.security import check_password_hash, generate_password_hash

from . import database
from .models import Device, ExitPoint, User, utcnow
from .problems import Problem

ROLES = ("admin", "retailer", "intermediary", "officer")
DEVICE_ROLE = "device"
DEVICE_TOKEN_PREFIX = "tfd_"



@functools.cache
def _dummy_hash(method: str) -> str:
    """Checked when the user does not exist, so a wrong username costs as
    long as a wrong password."""
    return generate_password_hash(secrets.token_hex(8), method=method)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    kind: str  # "user" or "device"
    id: str
    role: str  # a user role, or "device"
    retailer_id: int | None = None
    intermediary_id: int | None = None
    exit_point_id: int | None = None
    exit_point_code: str | None = None
    device_kind: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"{self.kind}:{self.id}"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def authenticate(username: str, password: str) -> User | None:
    user = database.session().scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def issue_access_token(user: User) -> tuple[str, int]:
    ttl = int(current_app.config["ACCESS_TOKEN_TTL"])
    now = utcnow()
    kid, key = current_app.extensions["keyring"].signing_key(database.session())
    claims = {
        "iss": current_app.config["TOKEN_ISSUER"],
        "aud": current_app.config["TOKEN_AUDIENCE"],
        "sub": f"user:{user.id}",
        "role": user.role,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    return token, ttl


def new_device_token(device_id: str) -> tuple[str, str]:
    """A fresh device token and the hash to store."""
    token = f"{DEVICE_TOKEN_PREFIX}{device_id}.{secrets.token_urlsafe(32)}"
    return token, _device_token_hash(token)


def _device_token_hash(token: str) -> str:
    # The token holds 256 random bits, so a plain hash is enough: there is
    # nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="taxfree"'}
    )


# Every request reads its caller's row (a revoked device or a deleted user
# is refused at once, so nothing about them is cached): only the columns
# the principal needs, in one plain Core statement built once (no ORM
# objects, no ORM execution machinery: this runs before every scan).
_DEVICES, _EXIT_POINTS, _USERS = Device.__table__, ExitPoint.__table__, User.__table__
_DEVICE = (
    select(_DEVICES.c.id, _DEVICES.c.kind, _DEVICES.c.exit_point_id, _DEVICES.c.token_hash,
           _DEVICES.c.revoked_at, _EXIT_POINTS.c.code.label("exit_point_code"))
    .join(_EXIT_POINTS, _DEVICES.c.exit_point_id == _EXIT_POINTS.c.id)
    .where(_DEVICES.c.id == bindparam("device_id"))
)
_USER = select(_USERS.c.id, _USERS.c.role, _USERS.c.retailer_id, _USERS.c.intermediary_id).where(
    _USERS.c.id == bindparam("user_id"))


def _principal_from_device_token(token: str) -> Principal:
    device_id = token[len(DEVICE_TOKEN_PREFIX):].split(".", 1)[0]
    device = database.session().execute(_DEVICE, {"device_id": device_id}).one_or_none()
    if (
        device is None
        or device.revoked_at is not None
        or not hmac.compare_digest(device.token_hash, _device_token_hash(token))
    ):
        raise _unauthorized("The device token is not valid or the device was revoked.")
    return Principal(
        kind="device",
        id=device.id,
        role=DEVICE_ROLE,
        exit_point_id=device.exit_point_id,
        exit_point_code=device.exit_point_code,
        device_kind=device.kind,
    )


def _principal_from_access_token(token: str) -> Principal:
    session = database.session()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise _unauthorized("The access token is malformed.")
    # Only our own algorithm and token type: no "none", no HS256 signed with a
    # public key, no QR payload passed off as an access token.
    if header.get("alg") != "EdDSA" or header.get("typ") != "at+jwt":
        raise _unauthorized("The access token is not valid.")
    key = current_app.extensions["keyring"].keyset(session, header.get("kid")).get(
        str(header.get("kid"))
    )
    if key is None:
        raise _unauthorized("The access token was signed with an unknown key.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience=current_app.config["TOKEN_AUDIENCE"],
            issuer=current_app.config["TOKEN_ISSUER"],
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The access token has expired.")
    except jwt.InvalidTokenError:
        raise _unauthorized("The access token is not valid.")
    kind, _, user_id = str(claims["sub"]).partition(":")
    user = (session.execute(_USER, {"user_id": int(user_id)}).one_or_none()
            if kind == "user" and user_id.isdigit() else None)
    if user is None:
        raise _unauthorized("The access token's user no longer exists.")
    return Principal(
        kind="user",
        id=str(user.id),
        role=user.role,
        retailer_id=user.retailer_id,
        intermediary_id=user.intermediary_id,
    )


def current_principal() -> Principal:
    """Authenticate the request once; raises a 401 problem without valid
    credentials."""
    if "principal" in g:
        return g.principal
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send a bearer token in the Authorization header.")
    token = token.strip()
    if token.startswith(DEVICE_TOKEN_PREFIX):
        g.principal = _principal_from_device_token(token)
    else:
        g.principal = _principal_from_access_token(token)
    return g.principal


def require(*roles: str):
    """Allow the view only to callers with one of ``roles``."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if principal.role not in roles:
                raise Problem(403, "forbidden", "Your role may not do this.")
            return view(*args, **kwargs)

        return wrapper

    return decorator
