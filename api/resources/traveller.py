"""The traveller's own phone (the app), and the desk's side of it: finding a
traveller by the desk pass the app shows, opening a check for a traveller
who came straight to the desk."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, request
from sqlalchemy import select

from shared import rules

from .. import database
from ..auth import TRAVELLER_ROLE, current_principal, issue_desk_pass, require
from ..models import ExitPoint, ValidationZone, utcnow
from ..observability import metrics
from ..problems import Problem
from ..schemas import (
    CheckSchema,
    ClaimRequest,
    DeskFormList,
    DeskPassRequest,
    DeskPassResponse,
    OpenCheckRequest,
    TokenResponse,
    TravellerExitPointList,
    TravellerForm,
    TravellerFormList,
    TravellerSessionRequest,
    ValidationRequest,
    ValidationResponse,
)
from ..services import duties, exit_point_presence, forms, traveller
from .blueprint import Blueprint
from .common import IDEMPOTENCY_HEADER, idempotent, keyring

# Made once (making a schema copies its fields): one per answer this module gives by hand.
_VALIDATION_RESPONSE, _CHECK = ValidationResponse(), CheckSchema()

blp = Blueprint("traveller", __name__, url_prefix="/api/v1/traveller",
                description="The traveller's app: sign-in with the passport, forms, validation at the exit point")
desk = Blueprint("desk", __name__, url_prefix="/api/v1", description="The desk and the traveller's app")


def _longest_duty() -> timedelta:
    return timedelta(hours=current_app.config["DESK_DUTY_MAX_HOURS"])


def _secret() -> bytes:
    return current_app.config["PASSPORT_HASH_KEY"].encode()


@blp.post("/session")
@blp.arguments(TravellerSessionRequest)
@blp.response(200, TokenResponse)
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def session(body):
    """Sign in with passport number, issuing country and date of birth: a
    short-lived traveller token. The same answer whether or not the passport
    has forms and whether or not the date of birth is right: a token from a
    wrong date of birth sees no forms. Limited per address and per passport
    (429 with Retry-After)."""
    token, ttl = traveller.sign_in(database.session(), current_app.config, body, request.remote_addr, utcnow())
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


@blp.get("/forms")
@require(TRAVELLER_ROLE)
@blp.response(200, TravellerFormList)
def forms_list():
    """The traveller's open forms, and those decided in the last 90 days."""
    return {"items": traveller.forms_of(database.session(), current_principal(), _secret(), utcnow())}


@blp.post("/forms/claim")
@require(TRAVELLER_ROLE)
@blp.arguments(ClaimRequest)
@blp.response(200, TravellerForm)
@blp.alt_response(404, response="NOT_FOUND")
def claim(body):
    """The form whose QR code the traveller scanned, if it is registered to
    their passport (422 passport_mismatch otherwise)."""
    session = database.session()
    return traveller.claim(session, current_principal(), _secret(), body["qr_payload"], keyring().verifying(session))


@blp.get("/exit-points")
@require(TRAVELLER_ROLE)
@blp.response(200, TravellerExitPointList)
def exit_points():
    """Where the app can validate: exit points with their validation zones,
    sensor post ids and, for seaports, today's sailings still to leave."""
    session = database.session()
    now = utcnow()
    tz = current_app.config["RULESET"].timezone
    today = rules.local_today(now, tz)
    day_end = rules.deadline_end_utc(today, tz)
    with_zones = select(ValidationZone.exit_point_id)
    items = []
    for point in session.scalars(select(ExitPoint).where(ExitPoint.id.in_(with_zones)).order_by(ExitPoint.code)):
        items.append({
            "code": point.code, "name": point.name, "kind": point.kind, "desk_location": point.desk_location,
            "zones": exit_point_presence.zones_of(session, point.id),
            "posts": [p.id for p in exit_point_presence.posts_of(session, point.id)],
            "sailings": exit_point_presence.sailings_between(session, point.id, now, day_end)
            if point.kind == "seaport" else [],
        })
    return {"items": items}


@blp.post("/validations")
@require(TRAVELLER_ROLE)
@blp.arguments(ValidationRequest)
@blp.response(200, ValidationResponse)
@blp.doc(parameters=[{**IDEMPOTENCY_HEADER, "required": True}])
def validations(body):
    """Validate the export of the traveller's forms at an exit point, with
    the phone's evidence of being there (GPS, sensor post tokens) and the
    trip (boarding pass or sailing). A verdict per form; weak evidence
    sends the traveller to the desk (check_required, with a desk pass),
    never to validated. Requires an Idempotency-Key: a retry replays the
    first answer."""
    if not request.headers.get("Idempotency-Key"):
        raise Problem(428, "idempotency_key_required", "Send an Idempotency-Key header with each validation.")

    def judge():
        session = database.session()
        result = traveller.validate(session, current_principal(), body, current_app.config,
                                    keyring().verifying(session), utcnow())
        return _VALIDATION_RESPONSE.dump(result), 200

    response = idempotent(body, judge)
    if response.status_code == 200 and "Idempotent-Replayed" not in response.headers:
        for item in response.get_json()["items"]:
            metrics.count_verdict(body["exit_point"].upper(), "app", item["verdict"])
    return response


@blp.post("/desk-pass")
@require(TRAVELLER_ROLE)
@blp.response(200, DeskPassResponse)
def desk_pass():
    """A fresh desk pass, to show the "show this to the officer" QR code again."""
    principal = current_principal()
    token, ttl = issue_desk_pass(principal.passport_key, principal.birth_key)
    return {"desk_pass": token, "expires_in": ttl}


# --- the desk ---------------------------------------------------------------------------

@desk.post("/desk/travellers")
@require("officer")
@desk.arguments(DeskPassRequest)
@desk.response(200, DeskFormList)
def desk_traveller(body):
    """The forms of the traveller whose desk pass (the QR code in their app)
    the officer scanned, waiting checks first, each with its check. For an
    officer on duty at a desk (403 ``not_on_duty`` otherwise)."""
    session = database.session()
    duties.required(session, current_principal(), utcnow(), _longest_duty())
    found = traveller.forms_for_desk(session, body["desk_pass"], _secret())
    checks = traveller.checks_of(session, [f.id for f in found])
    for form in found:
        form.desk_check = checks.get(form.id)
    return {"items": found}


@desk.post("/checks")
@require("officer")
@desk.arguments(OpenCheckRequest)
@desk.response(201, CheckSchema)
@desk.alt_response(200, schema=CheckSchema, description="The form was already waiting for a check")
@desk.alt_response(409, response="CONFLICT")
@desk.doc(parameters=[IDEMPOTENCY_HEADER])
def open_check(body):
    """Open a check for a traveller who came straight to the desk, at the
    exit point the officer is on duty at (403 ``not_on_duty`` when on duty
    nowhere): the form goes to check_required (channel "desk") and is
    decided with POST /forms/{id}/decision. A check waiting at another exit
    point's desk moves to this one."""
    def record():
        session = database.session()
        officer = current_principal()
        now = utcnow()
        duty = duties.required(session, officer, now, _longest_duty())
        form = forms.get_visible(session, officer, body["form_id"])
        check, opened = traveller.open_desk_check(session, officer, form, duty.exit_point,
                                                  current_app.config["RULESET"].timezone, now)
        check.line_count = len(form.lines)
        return _CHECK.dump(check), 201 if opened else 200

    response = idempotent(body, record)
    if response.status_code == 201 and "Idempotent-Replayed" not in response.headers:
        # The traveller was sent to the desk, at the desk: a verdict on channel "desk".
        metrics.count_verdict(response.get_json()["exit_point"], "desk", "check_required")
    return response
