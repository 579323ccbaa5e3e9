"""Officers on duty: signing on at an exit point's desk, and off again."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from .. import database
from ..auth import current_principal, require
from ..models import utcnow
from ..problems import Problem
from ..schemas import DutyRequest, DutySchema
from ..services import duties
from .blueprint import Blueprint

blp = Blueprint("duty", __name__, url_prefix="/api/v1/duty", description="Officers on duty at a desk")


def _longest() -> timedelta:
    return timedelta(hours=current_app.config["DESK_DUTY_MAX_HOURS"])


def _shown(duty) -> dict:
    return {"id": duty.id, "exit_point": duty.exit_point, "started_at": duty.started_at,
            "ends_at": duty.started_at + _longest()}


@blp.route("", methods=["GET"])
@require("officer")
@blp.response(200, DutySchema)
@blp.alt_response(404, response="NOT_FOUND")
def current():
    """Where you are on duty now (404 ``not_on_duty`` if nowhere)."""
    duty = duties.current(database.session(), current_principal(), utcnow(), _longest())
    if duty is None:
        raise Problem(404, "not_on_duty", "You are not on duty at any desk: sign on at an exit point.")
    return _shown(duty)


@blp.route("", methods=["POST"])
@require("officer")
@blp.arguments(DutyRequest)
@blp.response(201, DutySchema)
def sign_on(body):
    """Sign on at an exit point's desk: from now on you decide the checks
    there, and only there, until you sign off, sign on elsewhere or your
    shift ends (DESK_DUTY_MAX_HOURS). Recorded in the audit trail."""
    session = database.session()
    duty = duties.sign_on(session, current_principal(), body["exit_point"], utcnow())
    session.commit()
    return _shown(duty)


@blp.route("", methods=["DELETE"])
@require("officer")
@blp.response(204)
def sign_off():
    """Sign off: no more decisions until you sign on again."""
    session = database.session()
    duties.sign_off(session, current_principal(), utcnow())
    session.commit()
    return None
