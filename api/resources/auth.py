"""POST /api/v1/auth/token: a username and password for an access token."""
from __future__ import annotations

from flask import current_app, request
from .blueprint import Blueprint

from .. import auth, database
from ..auth import current_principal, require
from ..models import User, utcnow
from ..problems import Problem
from ..schemas import TokenRequest, TokenResponse
from ..services import sign_in

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Access tokens")


@blp.post("/token")
@blp.arguments(TokenRequest)
@blp.response(200, TokenResponse)
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def token(body):
    """Exchange a username and password for a bearer access token.

    Attempts are limited per client address; failed ones make the next
    attempt for the same username from the same address wait longer and
    longer; many from unfamiliar addresses hold that username back for a
    while (429 with Retry-After), across all workers."""
    session = database.session()
    guard = sign_in.login_guard(current_app.config)
    now = utcnow()
    username = body["username"].lower()
    guard.before(session, username, request.remote_addr, now)
    user = auth.authenticate(body["username"], body["password"])
    if user is None:
        raise Problem(401, "invalid_credentials", "Wrong username or password.")
    guard.succeeded(session, username, request.remote_addr, now)
    access_token, ttl = auth.issue_access_token(user)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}


@blp.post("/refresh")
@require(*auth.ROLES)
@blp.response(200, TokenResponse)
def refresh():
    """A fresh access token for a caller whose token is still valid, so an
    app can keep its user signed in without asking for the password again;
    never past ACCESS_SESSION_MAX_SECONDS after the password was given
    (401 ``session_expired``: log in again)."""
    principal = current_principal()
    user = database.session().get(User, int(principal.id))
    access_token, ttl = auth.issue_access_token(user, auth_time=principal.auth_time)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
