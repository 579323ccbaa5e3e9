"""The customs desk: the queue of checks and officers' decisions."""
from __future__ import annotations

from flask_smorest import Blueprint

from .. import database, pagination
from ..auth import current_principal, require
from ..models import utcnow
from ..problems import ProblemSchema
from ..schemas import CheckListArgs, CheckSchema, DecisionRequest, FormSchema, page_of
from ..services import decisions, forms
from .common import check_if_match, with_etag

blp = Blueprint("checks", __name__, url_prefix="/api/v1", description="Customs desk")


@blp.get("/checks")
@require("officer", "admin")
@blp.arguments(CheckListArgs, location="query")
@blp.response(200, page_of(CheckSchema))
def queue(args):
    """Travellers' forms waiting for a physical check, oldest first, with the
    risk rules that sent them to the desk."""
    after = pagination.decode(args["cursor"], 1)[0] if "cursor" in args else None
    limit = args["limit"]
    rows = decisions.queue(database.session(), args.get("exit_point"), args["status"], limit + 1, after)
    return pagination.page(rows, limit, lambda c: pagination.encode(c.id))


@blp.post("/forms/<form_id>/decision")
@require("officer")
@blp.arguments(DecisionRequest)
@blp.response(200, FormSchema)
@blp.alt_response(409, schema=ProblemSchema, description="Already decided")
def decide(body, form_id):
    """Record the outcome of a physical check: validated, partially validated
    (the lines shown) or rejected with a reason code. A second decision is 409."""
    session = database.session()
    officer = current_principal()
    form = forms.get_visible(session, officer, form_id)
    check_if_match(form)
    form = decisions.decide(
        session, officer, form, body["outcome"], body["lines"], body["reason_code"], body["note"], utcnow()
    )
    session.commit()
    return with_etag(form)
