"""POST /api/v1/auth/token: a username and password for an access token."""
from __future__ import annotations

from flask import current_app, request
from .blueprint import Blueprint

from .. import auth, database
from ..auth import current_principal, require
from ..models import User, utcnow
from ..problems import Problem
from ..schemas import TokenRequest, TokenResponse
from ..services import throttle

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Access tokens")


@blp.post("/token")
@blp.arguments(TokenRequest)
@blp.response(200, TokenResponse)
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def token(body):
    """Exchange a username and password for a bearer access token.

    Attempts are limited per client address and per username (429 with
    Retry-After), across all workers."""
    session = database.session()
    config = current_app.config
    now = utcnow()
    # Per address generously (a shop or an airport office shares one), per
    # username tightly (guessing one account's password).
    throttle.hit(session, f"login-ip:{request.remote_addr}",
                 config["LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE"], 60, now)
    throttle.hit(session, f"login-user:{body['username'].lower()}",
                 config["LOGIN_ATTEMPTS_PER_USER_PER_MINUTE"], 60, now)
    user = auth.authenticate(body["username"], body["password"])
    if user is None:
        raise Problem(401, "invalid_credentials", "Wrong username or password.")
    access_token, ttl = auth.issue_access_token(user)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}


@blp.post("/refresh")
@require(*auth.ROLES)
@blp.response(200, TokenResponse)
def refresh():
    """A fresh access token for a caller whose token is still valid, so an
    app can keep its user signed in without asking for the password again."""
    user = database.session().get(User, int(current_principal().id))
    access_token, ttl = auth.issue_access_token(user)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
