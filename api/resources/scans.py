"""POST /api/v1/scans: a device at an exit point scans a form's QR code."""
from __future__ import annotations

import jwt
from flask import current_app
from flask_smorest import Blueprint

from .. import database
from ..auth import current_principal, require
from ..models import utcnow
from ..schemas import ScanRequest, ScanResponse
from ..services import scans
from .common import keyring

blp = Blueprint("scans", __name__, url_prefix="/api/v1/scans", description="Scans at exit points")


def _kid(payload: str) -> str | None:
    """The key id a payload claims, so a key added by another worker is
    loaded before the payload is judged."""
    try:
        kid = jwt.get_unverified_header(payload).get("kid")
    except jwt.InvalidTokenError:
        return None
    return kid if isinstance(kid, str) else None


@blp.post("")
@require("device")
@blp.arguments(ScanRequest)
@blp.response(200, ScanResponse)
def scan(body):
    """Turn a scanned QR payload into a verdict: validated, check_required or
    refused (with a reason code). Scanning the same form again gives the same
    verdict; a form is never validated twice."""
    session = database.session()
    context = scans.ScanContext(
        ruleset=current_app.config["RULESET"],
        policy=current_app.config["RISK"],
        keys=keyring().keyset(session, _kid(body["qr_payload"])),
    )
    outcome = scans.scan(session, current_principal(), body["qr_payload"], context, utcnow())
    session.commit()
    return outcome

