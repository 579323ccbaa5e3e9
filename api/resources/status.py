"""GET /api/v1/status/{form_id}: a traveller checks a form, without logging in."""
from __future__ import annotations

from flask import current_app, request
from .blueprint import Blueprint

from shared import formid

from .. import database
from ..models import utcnow
from ..problems import Problem
from ..schemas import StatusArgs, TravellerStatus
from ..services import throttle, traveller_status

blp = Blueprint("status", __name__, url_prefix="/api/v1/status",
                description="Form status for travellers (no login)")


@blp.get("/<form_id>")
@blp.arguments(StatusArgs, location="query")
@blp.response(200, TravellerStatus)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def status(args, form_id):
    """The status of a form, its export deadline and the next step, for the
    traveller who knows its number and their last name (case and accents
    do not matter). An unknown number and a wrong name get the same 404.

    Lookups are limited per client address, and per form so that a known
    number cannot have its last name guessed from many addresses (429 with
    Retry-After)."""
    session = database.session()
    config = current_app.config
    now = utcnow()
    throttle.hit(session, f"status-ip:{request.remote_addr}",
                 config.get("STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE", 20), 60, now)
    if formid.is_valid_form_id(form_id):
        # Only well-formed numbers get a counter: random ones would fill the table.
        throttle.hit(session, f"status-form:{formid.normalize_form_id(form_id)}",
                     config.get("STATUS_LOOKUPS_PER_FORM_PER_HOUR", 20), 3600, now)
    found = traveller_status.lookup(session, form_id, args["last_name"])
    if found is None:
        raise Problem(404, "form_not_found",
                      "No form with this number and last name. Check both against your form.")
    return found
