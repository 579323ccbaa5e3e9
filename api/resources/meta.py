"""Keys and health: the JWKS for offline QR verification, liveness, readiness."""
from __future__ import annotations

from .blueprint import Blueprint
from sqlalchemy import text

from .. import database
from ..problems import Problem
from ..schemas import HealthSchema, JwksSchema
from .common import keyring

blp = Blueprint("meta", __name__, url_prefix="/", description="Keys and health")


@blp.get("/.well-known/jwks.json")
@blp.doc(security=[])
@blp.response(200, JwksSchema)
def jwks():
    """Every public key that verifies now, and no other: the keys of QR
    payloads (``kid`` starting ``qr-``; kiosks cache them to verify QR codes
    offline) and of access tokens (``at-``). A QR key stays until the
    export deadlines of the forms it signed have passed."""
    return keyring().jwks(database.session()), 200, {"Cache-Control": "public, max-age=300"}


@blp.get("/healthz")
@blp.doc(security=[])
@blp.response(200, HealthSchema)
def healthz():
    """The process is up."""
    return {"status": "ok"}


@blp.get("/readyz")
@blp.doc(security=[])
@blp.response(200, HealthSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
def readyz():
    """The process can reach its database."""
    try:
        database.session().execute(text("SELECT 1"))
    except Exception:
        raise Problem(503, "database_unavailable", "The database cannot be reached.",
                      headers={"Retry-After": "5"})
    return {"status": "ready"}
