"""POST /api/v1/auth/token: a username and password for an access token."""
from __future__ import annotations

from flask_smorest import Blueprint

from .. import auth
from ..problems import Problem
from ..schemas import TokenRequest, TokenResponse

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Access tokens")


@blp.post("/token")
@blp.arguments(TokenRequest)
@blp.response(200, TokenResponse)
@blp.doc(security=[])
def token(body):
    """Exchange a username and password for a bearer access token."""
    user = auth.authenticate(body["username"], body["password"])
    if user is None:
        raise Problem(401, "invalid_credentials", "Wrong username or password.")
    access_token, ttl = auth.issue_access_token(user)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
