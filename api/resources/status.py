"""POST /api/v1/status/{form_id}: a traveller checks a form, without logging in."""
from __future__ import annotations

from flask import current_app, request
from .blueprint import Blueprint

from shared import formid

from .. import database
from ..models import utcnow
from ..problems import Problem
from ..schemas import StatusLookup, TravellerStatus
from ..services import sign_in, throttle, traveller_status

blp = Blueprint("status", __name__, url_prefix="/api/v1/status",
                description="Form status for travellers (no login)")


@blp.post("/<form_id>")
@blp.arguments(StatusLookup)
@blp.response(200, TravellerStatus)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def status(body, form_id):
    """The status of a form, its export deadline and the next step, for the
    traveller who knows its number and their last name (case and accents
    do not matter). The last name goes in the body, never the address, so
    it stays out of access logs and browser histories. An unknown number
    and a wrong name get the same 404.

    Lookups are limited per client address; wrong names make the next
    lookup of that form from that address wait longer and longer; and many
    lookups of one form from unfamiliar addresses hold it back for a while,
    so a known number cannot have its last name guessed from many addresses
    (429 with Retry-After)."""
    session = database.session()
    config = current_app.config
    now = utcnow()
    if not formid.is_valid_form_id(form_id):
        # No form has this number: only the address is counted (random
        # numbers would fill the table with counters).
        throttle.hit(session, f"status-ip:{request.remote_addr}",
                     config["STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE"], 60, now)
        raise _not_found()
    number = formid.normalize_form_id(form_id)
    guard = sign_in.status_guard(config)
    guard.before(session, number, request.remote_addr, now)
    found = traveller_status.lookup(session, number, body["last_name"])
    if found is None:
        raise _not_found()
    guard.succeeded(session, number, request.remote_addr, now)
    return found


def _not_found() -> Problem:
    return Problem(404, "form_not_found",
                   "No form with this number and last name. Check both against your form.")
