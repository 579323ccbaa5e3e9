"""Forms: issue, read, list, QR images, cancel, refund, audit trail."""
from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from flask import Response, current_app, request
from flask.views import MethodView
from .blueprint import Blueprint
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.http import HTTP_STATUS_CODES

from .. import database, pagination, problems
from ..auth import current_principal, require
from ..models import Event, Form, utcnow
from ..problems import Problem
from ..schemas import (
    EventSchema,
    FormBatchRequest,
    FormBatchResponse,
    FormChange,
    FormCreate,
    FormListArgs,
    FormSchema,
    RefundRequest,
    page_of,
)
from ..services import batch, changes, forms, shop_view
from .common import IDEMPOTENCY_HEADER, check_if_match, idempotent, keyring, with_etag

blp = Blueprint("forms", __name__, url_prefix="/api/v1/forms", description="Tax-free forms")
# Made once: making a schema copies its fields (the lines' schema too),
# which costs more than dumping or loading a form.
_FORM, _FORM_CREATE = FormSchema(), FormCreate()

# A form's owners act on it (issue, cancel, record the refund); customs
# staff read it. The administrator manages exit points, users and devices
# and is not a shop: it never issues, cancels or refunds.
ISSUERS = forms.RETAIL_ROLES
OWNERS = forms.RETAIL_ROLES + forms.READ_ALL


def _issuer() -> forms.Issuer:
    kid, key = keyring().signing_key(database.session())
    return forms.Issuer(
        ruleset=current_app.config["RULESET"],
        passport_secret=current_app.config["PASSPORT_HASH_KEY"].encode(),
        signing_kid=kid,
        signing_key=key,
    )


@blp.route("")
class Forms(MethodView):
    @require(*ISSUERS)
    @blp.arguments(FormCreate)
    @blp.response(201, FormSchema)
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(parameters=[IDEMPOTENCY_HEADER])
    def post(self, body):
        """Issue a tax-free form and its signed QR payload.

        Ineligible purchases are refused with 422 naming each field at fault.
        """
        def issue():
            return forms.issue(database.session(), current_principal(), body, _issuer(), utcnow(), last=True), 201

        return idempotent(body, issue, lambda form: {"Location": f"/api/v1/forms/{form['id']}"}, dump=_FORM.dump)

    @require(*OWNERS)
    @blp.arguments(FormListArgs, location="query")
    @blp.response(200, page_of(FormChange))
    def get(self, args):
        """List the forms you can see, most recently changed last: a change feed.

        Each form is listed at its latest change. ``updated_since`` picks a
        starting point; pass a page's ``next_cursor`` to get the next page,
        and later the ``cursor`` of the last form you handled to get the
        changes since. Changes are numbered as they become visible, in that
        order, so following cursors never skips or repeats a change, even
        while changes commit as you page through.
        """
        query = forms.visible_forms(current_principal()).where(Form.change_seq > 0).options(
            selectinload(Form.retailer), selectinload(Form.exit_point)
        )
        if "status" in args:
            query = query.where(Form.status == args["status"])
        if "updated_since" in args:
            query = query.where(Form.updated_at >= args["updated_since"])
        if "cursor" in args:
            after = pagination.decode(args["cursor"], 1)[0]
            if type(after) is not int or not 0 <= after < 2**63:
                raise Problem(400, "invalid_cursor", "The cursor is not one this API gave out.",
                              errors={"cursor": ["Not a valid cursor."]})
            query = query.where(Form.change_seq > after)
        session = database.session()
        # The changes committed since the last reading get their numbers
        # first; one committing after that is listed at the next.
        changes.number_changed(session)
        limit = args["limit"]
        rows = session.scalars(
            query.order_by(Form.change_seq, Form.id).limit(limit + 1)
        ).all()
        return pagination.page(list(rows), limit, lambda f: pagination.encode(f.change_seq))


@blp.post("/batch")
@require(*ISSUERS)
@blp.arguments(FormBatchRequest)
@blp.response(200, FormBatchResponse)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def issue_batch(body):
    """Issue up to 500 forms in one request.

    Each form gets its own result, in request order: ``status`` 201 with the
    form as POST /forms returns it, or the status of a problem document (422
    for a malformed or ineligible form or a retailer you do not act for, 409
    for an invoice that already has a form, also earlier in the same batch).
    One bad form never keeps the others from being stored. The whole batch
    honours ``Idempotency-Key``.
    """
    def issue_all():
        drafts = [_parse_form(raw) for raw in body["forms"]]
        issued = batch.issue_each(database.session(), current_principal(), drafts, _issuer(), utcnow())
        return {"items": [_batch_item(n, outcome) for n, outcome in enumerate(issued)]}, 200

    return idempotent(body, issue_all)


def _parse_form(raw) -> dict | Problem:
    try:
        return _FORM_CREATE.load(raw)
    except ValidationError as error:
        errors = problems.flatten_errors(error.messages)
        return Problem(422, "invalid_request",
                       "The form has invalid fields: " + ", ".join(sorted(errors)), errors=errors)


def _batch_item(index: int, outcome) -> dict:
    if isinstance(outcome, Problem):
        body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(outcome.status, "Error"),
                "status": outcome.status, "detail": outcome.detail,
                "instance": f"{request.path}#/forms/{index}", "code": outcome.code}
        if outcome.errors:
            body["errors"] = outcome.errors
        return {"index": index, "status": outcome.status, "body": body}
    return {"index": index, "status": 201, "body": _FORM.dump(outcome)}


@blp.get("/<form_id>")
@require(*OWNERS)
@blp.response(200, FormSchema)
def get_form(form_id):
    """A form in full, with the traveller's details."""
    return with_etag(forms.get_visible(database.session(), current_principal(), form_id))


@blp.post("/<form_id>/cancel")
@require(*ISSUERS)
@blp.response(200, FormSchema)
def cancel(form_id):
    """Cancel a form that has not been used at an exit point yet."""
    session = database.session()
    principal = current_principal()
    form = forms.get_visible(session, principal, form_id)
    check_if_match(form)
    form = forms.cancel(session, principal, form, utcnow())
    session.commit()
    return with_etag(form)


@blp.post("/<form_id>/refund")
@require(*ISSUERS)
@blp.arguments(RefundRequest)
@blp.response(200, FormSchema)
def refund(body, form_id):
    """Report that the VAT refund was paid to the traveller."""
    session = database.session()
    principal = current_principal()
    form = forms.get_visible(session, principal, form_id)
    check_if_match(form)
    form = forms.refund(session, principal, form, body["amount_cents"], body["paid_at"], utcnow())
    session.commit()
    return with_etag(form)


@blp.get("/<form_id>/events")
@require(*OWNERS)
@blp.response(200, page_of(EventSchema))
def events(form_id):
    """The form's audit trail, oldest first.

    Customs staff read it as written. Retailers and intermediaries see what
    happened and where, but not why customs checked the form (the risk
    rules) nor which officer did something (``customs``; devices are
    ``kiosk``)."""
    session = database.session()
    principal = current_principal()
    form = forms.get_visible(session, principal, form_id)
    rows = session.scalars(select(Event).where(Event.form_id == form.id).order_by(Event.id)).all()
    return {"items": shop_view.for_reader(session, principal, list(rows)), "next_cursor": None}


def _qr(form_id):
    form = forms.get_visible(database.session(), current_principal(), form_id)
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(form.qr_payload)
    code.make(fit=True)
    return code


@blp.get("/<form_id>/qr.png")
@require(*OWNERS)
@blp.response(200, description="The QR code as a PNG image", content_type="image/png")
def qr_png(form_id):
    """The form's QR code as PNG, for printing."""
    buffer = io.BytesIO()
    _qr(form_id).make_image().save(buffer, format="PNG")
    return Response(buffer.getvalue(), mimetype="image/png")


@blp.get("/<form_id>/qr.svg")
@require(*OWNERS)
@blp.response(200, description="The QR code as SVG", content_type="image/svg+xml")
def qr_svg(form_id):
    """The form's QR code as SVG, sharp at any print size."""
    buffer = io.BytesIO()
    _qr(form_id).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return Response(buffer.getvalue(), mimetype="image/svg+xml")
