"""The customs desk: the queue of checks and officers' decisions."""
from __future__ import annotations

from flask import current_app
from .blueprint import Blueprint

from .. import database, pagination
from ..auth import current_principal, require
from ..models import utcnow
from ..models import Form
from ..observability import metrics
from ..schemas import CheckListArgs, CheckSchema, DecisionRequest, FormSchema, PassportLookup, page_of
from ..services import decisions, forms
from .common import IDEMPOTENCY_HEADER, check_if_match, form_etag, idempotent

blp = Blueprint("checks", __name__, url_prefix="/api/v1", description="Customs desk")
# Made once: making a schema copies its fields, which costs more than a dump.
_FORM = FormSchema()


@blp.get("/checks")
@require("officer", "admin")
@blp.arguments(CheckListArgs, location="query")
@blp.response(200, page_of(CheckSchema))
def queue(args):
    """Travellers' forms waiting for a physical check, oldest first, with the
    risk rules that sent them to the desk."""
    after = pagination.decode(args["cursor"], 1)[0] if "cursor" in args else None
    limit = args["limit"]
    officer = current_principal()
    rows = decisions.queue(
        database.session(), args.get("exit_point"), args["status"], limit + 1, after,
        officer_id=int(officer.id) if args.get("officer") == "me" else None,
        decided_since=args.get("decided_since"),
    )
    return pagination.page(rows, limit, lambda c: pagination.encode(c.id))


@blp.post("/forms/<form_id>/decision")
@require("officer")
@blp.arguments(DecisionRequest)
@blp.response(200, FormSchema)
@blp.alt_response(409, response="CONFLICT")
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def decide(body, form_id):
    """Record the outcome of a physical check: validated, partially validated
    (the lines shown) or rejected with a reason code. A second decision is 409;
    a decision resent with its Idempotency-Key (an officer's offline queue)
    replays the first answer.

    Only an officer on duty at the exit point whose desk holds the check may
    decide it (403 ``not_on_duty_here``; sign on with POST /duty). After the
    export deadline a validation is refused (422 ``deadline_passed``), except
    for a check opened before the deadline ended and decided within the
    desk's grace period after it; a rejection stays possible."""
    def record():
        session = database.session()
        officer = current_principal()
        form = forms.get_visible(session, officer, form_id)
        check_if_match(form)
        form = decisions.decide(session, officer, form, body["outcome"], body["lines"],
                                body["reason_code"], body["note"], utcnow(),
                                desk=decisions.DeskRules.from_config(current_app.config),
                                decided_at=body["decided_at"])
        return _FORM.dump(form), 200

    response = idempotent(body, record, lambda form: {"ETag": form_etag(form)})
    if response.status_code == 200 and "Idempotent-Replayed" not in response.headers:
        decided = response.get_json()
        metrics.count_verdict(decided["exit_point"], "desk", decided["status"])
    return response


@blp.post("/forms/lookup")
@require("officer")
@blp.arguments(PassportLookup)
@blp.response(200, page_of(FormSchema))
def lookup(body):
    """A traveller's forms by passport, newest first, for the officer holding
    the passport. POST, so the passport number stays out of URLs and logs."""
    key = forms.passport_key(current_app.config["PASSPORT_HASH_KEY"].encode(),
                             body["passport_country"], body["passport_number"])
    query = forms.visible_forms(current_principal()).where(Form.passport_key == key)
    rows = database.session().scalars(query.order_by(Form.created_at.desc(), Form.id).limit(100)).all()
    return {"items": rows, "next_cursor": None}
