"""Who is calling: users with JWT access tokens, devices with device tokens,
travellers with short-lived traveller tokens from their own phone.

User access tokens are short-lived JWTs (RFC 9068 ``at+jwt``) signed with the
keyring's current access-token key (never a QR key: api/keys.py). Devices (kiosks, tablets, handhelds) hold a
long-lived opaque token, stored hashed, that survives key rotation and stops
working the moment the device is revoked.

Travellers sign in on their phone with passport and date of birth
(api/services/traveller.py) and get a JWT signed like an access token but
with its own ``typ`` and audience, so neither kind of token passes for the
other. Desk passes (the "show this to the officer" QR code) are the same
again, with a third ``typ`` and audience.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import jwt
from flask import current_app, g, request
from sqlalchemy import bindparam, select
from werkzeug.security import check_password_hash, generate_password_hash

from shared.qrtoken import ACCESS_TOKEN as ACCESS_TOKEN_KEYS

from . import database
from .models import Device, ExitPoint, Intermediary, Retailer, User, utcnow
from .problems import Problem

ROLES = ("admin", "retailer", "intermediary", "officer")
DEVICE_ROLE = "device"
DEVICE_TOKEN_PREFIX = "tfd_"
TRAVELLER_ROLE = "traveller"
TRAVELLER_TOKEN_TYPE = "traveller+jwt"
DESK_PASS_TYPE = "desk-pass+jwt"



@functools.cache
def _dummy_hash(method: str) -> str:
    """Checked when the user does not exist, so a wrong username costs as
    long as a wrong password."""
    return generate_password_hash(secrets.token_hex(8), method=method)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    kind: str  # "user", "device" or "traveller"
    id: str
    role: str  # a user role, "device" or "traveller"
    retailer_id: int | None = None
    intermediary_id: int | None = None
    exit_point_id: int | None = None
    exit_point_code: str | None = None
    device_kind: str | None = None
    # A traveller: keyed hashes of passport, date of birth and app install.
    passport_key: str | None = None
    birth_key: str | None = None
    install_key: str | None = None
    # A user's token: when they logged in with their password (epoch
    # seconds); refreshed tokens keep it, so a session has an end.
    auth_time: int | None = None
    # A shop's user: the shop's row and its intermediary's (the columns of
    # SHOP_COLUMNS), read with the user's in the request's first
    # transaction, for the forms it issues (api/services/forms.py).
    shop: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"{self.kind}:{self.id}"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def authenticate(username: str, password: str) -> User | None:
    """The user with this username and password; None otherwise, and for a
    disabled user (who hears nothing more than a wrong password would)."""
    user = database.session().scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return None
    if not check_password_hash(user.password_hash, password) or user.disabled_at is not None:
        return None
    return user


def issue_access_token(user: User, auth_time: int | None = None) -> tuple[str, int]:
    """A signed access token for ``user``. ``auth_time``: when the user
    logged in with their password (a refresh keeps the original); no token
    lives past ACCESS_SESSION_MAX_SECONDS after it."""
    ttl = int(current_app.config["ACCESS_TOKEN_TTL"])
    now = utcnow()
    auth_time = int(now.timestamp()) if auth_time is None else auth_time
    session_end = auth_time + int(current_app.config["ACCESS_SESSION_MAX_SECONDS"])
    ttl = min(ttl, session_end - int(now.timestamp()))
    if ttl <= 0:
        raise _unauthorized("The session has reached its maximum length; log in again.",
                            code="session_expired")
    kid, key = current_app.extensions["keyring"].signing_key(database.session(), ACCESS_TOKEN_KEYS)
    claims = {
        "iss": current_app.config["TOKEN_ISSUER"],
        "aud": current_app.config["TOKEN_AUDIENCE"],
        "sub": f"user:{user.id}",
        "role": user.role,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
        "auth_time": auth_time,
        "ver": user.token_version,
    }
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    return token, ttl


def _sign(claims: dict, typ: str) -> str:
    """Sign our own JWT (traveller token, desk pass) with the key that signs
    access tokens."""
    kid, key = current_app.extensions["keyring"].signing_key(database.session(), ACCESS_TOKEN_KEYS)
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": typ})


@dataclass(frozen=True)
class _Verified:
    """A token this worker verified: what it was verified as, with which
    key, and its claims."""

    typ: str
    audience: str
    kid: str
    key: object
    expires: int  # its exp, epoch seconds
    claims: dict


# Tokens verified by this worker, by their exact text: a caller sends the
# same token with every request until it expires, and checking its EdDSA
# signature again (with PyJWT's parsing) costs more than the rest of its
# authentication. A token is served from here only while its key still
# verifies (the very key object the keyring holds: a retired key, or one
# reloaded since, sends it back through the full check) and before its
# ``exp``; what the caller's row says (revoked, disabled, a new token
# version) is read on every request as before. Only verified tokens get
# in, so a stream of forged ones cannot fill it; at most this many per
# worker (about 2 KB each), emptied when full.
_VERIFIED_MAX = 4096


def _verified_tokens() -> dict[str, _Verified]:
    return current_app.extensions.setdefault("verified_tokens", {})


class _UnknownKey(jwt.InvalidTokenError):
    """Signed with a key that is not (or no longer) one of the keyring's."""


def _verified_claims(token: str, typ: str, audience: str,
                     required: tuple[str, ...] = ("exp", "iat", "sub", "iss", "aud")) -> dict:
    """The claims of one of our JWTs of type ``typ`` for ``audience``; raises
    jwt.InvalidTokenError (ExpiredSignatureError once expired). The claims
    are shared by every request that sends the token: read them, never
    change them."""
    keyring, session = current_app.extensions["keyring"], database.session()
    known = _verified_tokens().get(token)
    if known is not None and known.typ == typ and known.audience == audience \
            and keyring.keyset(session, known.kid, ACCESS_TOKEN_KEYS).get(known.kid) is known.key \
            and utcnow().timestamp() < known.expires:
        return known.claims
    header = jwt.get_unverified_header(token)
    # Only our own algorithm and token type: no "none", no HS256 signed with
    # a public key, no QR payload passed off as one of our tokens.
    if header.get("alg") != "EdDSA" or header.get("typ") != typ:
        raise jwt.InvalidTokenError("not this kind of token")
    # Access-token keys only: a token signed with a QR key is refused.
    kid = str(header.get("kid"))
    key = keyring.keyset(session, kid, ACCESS_TOKEN_KEYS).get(kid)
    if key is None:
        raise _UnknownKey("unknown key")
    claims = jwt.decode(token, key, algorithms=["EdDSA"], audience=audience,
                        issuer=current_app.config["TOKEN_ISSUER"], options={"require": list(required)})
    verified = _verified_tokens()
    if len(verified) >= _VERIFIED_MAX:
        verified.clear()
    verified[token] = _Verified(typ, audience, kid, key, int(claims["exp"]), claims)
    return claims


def traveller_audience() -> str:
    return current_app.config["TOKEN_AUDIENCE"] + "/traveller"


def desk_pass_audience() -> str:
    return current_app.config["TOKEN_AUDIENCE"] + "/desk-pass"


def _traveller_claims(passport_key: str, birth_key: str, audience: str, ttl: int) -> dict:
    now = utcnow()
    return {
        "iss": current_app.config["TOKEN_ISSUER"], "aud": audience,
        "sub": f"traveller:{passport_key}", "dob": birth_key,
        "iat": now, "exp": now + timedelta(seconds=ttl), "jti": uuid.uuid4().hex,
    }


def issue_traveller_token(passport_key: str, birth_key: str, install_key: str) -> tuple[str, int]:
    """A traveller token: it holds keyed hashes only (passport, date of
    birth, install), never the passport number or the date itself."""
    ttl = int(current_app.config["TRAVELLER_TOKEN_TTL"])
    claims = _traveller_claims(passport_key, birth_key, traveller_audience(), ttl)
    claims["iid"] = install_key
    return _sign(claims, TRAVELLER_TOKEN_TYPE), ttl


def issue_desk_pass(passport_key: str, birth_key: str) -> tuple[str, int]:
    """The "show this to the officer" code: who the traveller is, as keyed
    hashes, for the desk to find their forms."""
    ttl = int(current_app.config["DESK_PASS_TTL"])
    return _sign(_traveller_claims(passport_key, birth_key, desk_pass_audience(), ttl), DESK_PASS_TYPE), ttl


def read_desk_pass(token: str) -> tuple[str, str]:
    """(passport_key, birth_key) of a desk pass; raises a 422 problem."""
    try:
        claims = _verified_claims(token, DESK_PASS_TYPE, desk_pass_audience())
    except jwt.ExpiredSignatureError:
        raise Problem(422, "desk_pass_expired",
                      "This desk pass has expired: ask the traveller to show it again in the app.")
    except jwt.InvalidTokenError:
        raise Problem(422, "invalid_desk_pass", "This is not a desk pass of the tax-free system.")
    kind, _, passport_key = str(claims["sub"]).partition(":")
    if kind != "traveller" or not passport_key or not isinstance(claims.get("dob"), str):
        raise Problem(422, "invalid_desk_pass", "This is not a desk pass of the tax-free system.")
    return passport_key, claims["dob"]


def _principal_from_traveller_token(token: str) -> Principal:
    try:
        claims = _verified_claims(token, TRAVELLER_TOKEN_TYPE, traveller_audience())
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The traveller token has expired; sign in again.")
    except jwt.InvalidTokenError:
        raise _unauthorized("The traveller token is not valid.")
    kind, _, passport_key = str(claims["sub"]).partition(":")
    birth_key, install_key = claims.get("dob"), claims.get("iid")
    if kind != "traveller" or not passport_key or not isinstance(birth_key, str) \
            or not isinstance(install_key, str):
        raise _unauthorized("The traveller token is not valid.")
    # The audit trail names the app install, never the passport.
    return Principal(kind="traveller", id=install_key[:16], role=TRAVELLER_ROLE,
                     passport_key=passport_key, birth_key=birth_key, install_key=install_key)


def new_device_token(device_id: str) -> tuple[str, str]:
    """A fresh device token and the hash to store."""
    token = f"{DEVICE_TOKEN_PREFIX}{device_id}.{secrets.token_urlsafe(32)}"
    return token, _device_token_hash(token)


def _device_token_hash(token: str) -> str:
    # The token holds 256 random bits, so a plain hash is enough: there is
    # nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def _unauthorized(detail: str, code: str = "unauthorized") -> Problem:
    return Problem(
        401, code, detail, headers={"WWW-Authenticate": 'Bearer realm="taxfree"'}
    )


# Every request reads its caller's row (a revoked device or a deleted user
# is refused at once, so nothing about them is cached): only the columns
# the principal needs, in one plain Core statement built once (no ORM
# objects, no ORM execution machinery: this runs before every scan).
_DEVICES, _EXIT_POINTS, _USERS = Device.__table__, ExitPoint.__table__, User.__table__


def device_columns(exit_points=_EXIT_POINTS) -> tuple:
    """What authenticating a device reads of its row, and its exit point's
    code (from ``exit_points``, joined on the device's exit point: the
    table or an alias of it), in the order ``UnreadDevice.check`` takes."""
    return (_DEVICES.c.id, _DEVICES.c.kind, _DEVICES.c.exit_point_id, _DEVICES.c.token_hash,
            _DEVICES.c.revoked_at, exit_points.c.code.label("exit_point_code"))


def device_and_exit_point(exit_points=_EXIT_POINTS):
    """A device's row joined to its exit point's (``exit_points``: the
    table or an alias of it): the FROM of every statement that reads
    ``device_columns(exit_points)``."""
    return _DEVICES.join(exit_points, _DEVICES.c.exit_point_id == exit_points.c.id)


_DEVICE_WIDTH = len(device_columns())
_DEVICE = database.HotStatement(
    select(*device_columns()).select_from(device_and_exit_point()).where(_DEVICES.c.id == bindparam("device_id"))
)
# A shop's user issues forms, and each form needs the shop's VAT number and
# its intermediary's fee: their rows come with the user's (an outer join,
# nothing for other roles), one round trip less per form issued.
_SHOPS, _INTERMEDIARIES = Retailer.__table__, Intermediary.__table__
SHOP_COLUMNS = (*_SHOPS.c, *_INTERMEDIARIES.c)
_USER = database.HotStatement(
    select(_USERS.c.id, _USERS.c.role, _USERS.c.retailer_id, _USERS.c.intermediary_id, _USERS.c.token_version,
           _USERS.c.disabled_at, *SHOP_COLUMNS)
    .outerjoin(_SHOPS, _USERS.c.retailer_id == _SHOPS.c.id)
    .outerjoin(_INTERMEDIARIES, _SHOPS.c.intermediary_id == _INTERMEDIARIES.c.id)
    .where(_USERS.c.id == bindparam("user_id")))


@dataclass(frozen=True)
class UnreadDevice:
    """A request's device token whose row no statement has read yet.

    A live scan reads the device's row in its first statement, with the
    form's facts (api/services/scans.py), or with the answer stored for its
    Idempotency-Key (api/services/idempotency.py): one round trip less on
    the API's hottest path. Before that the request writes nothing and
    reads nothing of a form or a traveller (only the public QR keys, for a
    kid the worker does not hold, at most once a second), and nothing it
    does after comes before ``check``: its answer for a revoked device or a
    wrong secret is the 401 every other request gets. Each method makes
    the device the request's principal.
    """

    id: str
    token: str = field(repr=False)

    @property
    def actor(self) -> str:
        """The device's ``Principal.actor``, should its row authenticate it."""
        return f"device:{self.id}"

    def check(self, row: tuple | None) -> Principal:
        """The device, authenticated by its row (``device_columns``, None:
        no such device)."""
        if row is None:
            raise _unauthorized("The device token is not valid or the device was revoked.")
        id_, kind, exit_point_id, token_hash, revoked_at, exit_point_code = row
        if revoked_at is not None or not hmac.compare_digest(token_hash, _device_token_hash(self.token)):
            raise _unauthorized("The device token is not valid or the device was revoked.")
        g.principal = Principal(
            kind="device",
            id=id_,
            role=DEVICE_ROLE,
            exit_point_id=exit_point_id,
            exit_point_code=exit_point_code,
            device_kind=kind,
        )
        return g.principal

    def check_leading(self, row: tuple | None) -> tuple[Principal, tuple]:
        """The device, authenticated by the first columns of ``row`` (of a
        statement that reads ``device_columns`` before anything else; None:
        no such device), and the row's other columns."""
        principal = self.check(None if row is None else row[:_DEVICE_WIDTH])
        return principal, row[_DEVICE_WIDTH:]

    def read(self, session) -> Principal:
        """The device, authenticated by its row read on its own."""
        return self.check(_DEVICE.execute(session, {"device_id": self.id}).fetchone())


def _unread_device(token: str) -> UnreadDevice:
    return UnreadDevice(token[len(DEVICE_TOKEN_PREFIX):].split(".", 1)[0], token)


def unread_device() -> UnreadDevice | None:
    """The request's device, if a view that reads its row later
    (``require(..., device_row_later=True)``) has not read it yet."""
    return None if "principal" in g else g.get("unread_device")


def _principal_from_access_token(token: str) -> Principal:
    seen = _verified_tokens().get(token)
    if seen is not None:
        typ = seen.typ  # this very text's header, read when it was verified
    else:
        try:
            typ = jwt.get_unverified_header(token).get("typ")
        except jwt.InvalidTokenError:
            raise _unauthorized("The access token is malformed.")
    if typ == TRAVELLER_TOKEN_TYPE:
        return _principal_from_traveller_token(token)
    try:
        claims = _verified_claims(token, "at+jwt", current_app.config["TOKEN_AUDIENCE"],
                                  ("exp", "iat", "sub", "iss", "aud", "auth_time", "ver"))
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The access token has expired.")
    except _UnknownKey:
        raise _unauthorized("The access token was signed with an unknown key.")
    except jwt.InvalidTokenError:
        raise _unauthorized("The access token is not valid.")
    kind, _, user_id = str(claims["sub"]).partition(":")
    user = (_USER.execute(database.session(), {"user_id": int(user_id)}).fetchone()
            if kind == "user" and user_id.isdigit() else None)
    if user is None:
        raise _unauthorized("The access token's user no longer exists.")
    id_, role, retailer_id, intermediary_id, token_version, disabled_at = user[:6]
    # Disabling a user, a new password or a new role bumps the version:
    # every token issued before is refused from that moment.
    if disabled_at is not None or claims["ver"] != token_version:
        raise _unauthorized("The access token was revoked; log in again.", code="token_revoked")
    return Principal(
        kind="user",
        id=str(id_),
        role=role,
        retailer_id=retailer_id,
        intermediary_id=intermediary_id,
        auth_time=int(claims["auth_time"]),
        shop=tuple(user[6:]) if retailer_id is not None else None,
    )


def current_principal() -> Principal:
    """Authenticate the request once; raises a 401 problem without valid
    credentials."""
    if "principal" in g:
        return g.principal
    token = _bearer_token()
    if token.startswith(DEVICE_TOKEN_PREFIX):
        return _unread_device(token).read(database.session())
    g.principal = _principal_from_access_token(token)
    return g.principal


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send a bearer token in the Authorization header.")
    return token.strip()


def require(*roles: str, device_row_later: bool = False):
    """Allow the view only to callers with one of ``roles``.

    ``device_row_later``: a device token lets the view in before its row is
    read, for a view that reads it with its own first statement
    (``unread_device``); ``current_principal`` still reads it on its own
    wherever the view needs the device sooner."""
    if device_row_later and DEVICE_ROLE not in roles:
        raise ValueError("device_row_later is for views that devices may call")

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if device_row_later and "principal" not in g:
                token = _bearer_token()
                if token.startswith(DEVICE_TOKEN_PREFIX):
                    g.unread_device = _unread_device(token)
                    return view(*args, **kwargs)
            principal = current_principal()
            if principal.role not in roles:
                raise Problem(403, "forbidden", "Your role may not do this.")
            return view(*args, **kwargs)

        return wrapper

    return decorator
