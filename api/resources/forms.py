"""Forms: issue, read, list, QR images, cancel, refund, audit trail."""
from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from flask import Response, current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import database, pagination
from ..auth import current_principal, require
from ..models import Event, Form, utcnow
from ..problems import Problem, ProblemSchema
from ..schemas import (
    EventSchema,
    FormCreate,
    FormListArgs,
    FormSchema,
    FormSummary,
    RefundRequest,
    page_of,
)
from ..services import forms, idempotency
from .common import check_if_match, idempotency_key, keyring, with_etag

blp = Blueprint("forms", __name__, url_prefix="/api/v1/forms", description="Tax-free forms")

ISSUERS = ("retailer", "intermediary", "admin")
OWNERS = ("retailer", "intermediary", "admin", "officer")


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
    @blp.alt_response(409, schema=ProblemSchema, description="The invoice already has a form")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                          "schema": {"type": "string", "maxLength": 255},
                          "description": "Retries with the same key and body replay the first response"}])
    def post(self, body):
        """Issue a tax-free form and its signed QR payload.

        Ineligible purchases are refused with 422 naming each field at fault.
        """
        principal = current_principal()
        session = database.session()
        key = idempotency_key()
        if key is not None:
            body_hash = idempotency.request_hash(body)
            stored = idempotency.replay(session, principal.actor, key, body_hash)
            if stored is not None:
                return _json(stored.response_body, stored.status_code, replayed=True)
        try:
            form = forms.issue(session, principal, body, _issuer(), utcnow())
            payload = FormSchema().dump(form)
            if key is not None:
                idempotency.remember(session, principal.actor, key, body_hash, 201, payload)
            session.commit()
        except (IntegrityError, Problem) as clash:
            if isinstance(clash, Problem) and clash.status != 409:
                raise
            session.rollback()
            # A retry with the same key that ran at the same moment stored
            # the form first: answer as it did.
            stored = key and idempotency.replay(session, principal.actor, key, body_hash)
            if stored:
                return _json(stored.response_body, stored.status_code, replayed=True)
            if isinstance(clash, Problem):
                raise
            raise Problem(409, "conflict", "Another request stored this invoice at the same moment.")
        return _json(payload, 201, location=f"/api/v1/forms/{form.id}")

    @require(*OWNERS)
    @blp.arguments(FormListArgs, location="query")
    @blp.response(200, page_of(FormSummary))
    def get(self, args):
        """List the forms you can see, most recently changed last.

        ``updated_since`` and ``cursor`` page through changes: pass the
        ``next_cursor`` of one page to get the next.
        """
        query = forms.visible_forms(current_principal()).options(
            selectinload(Form.retailer), selectinload(Form.exit_point)
        )
        if "status" in args:
            query = query.where(Form.status == args["status"])
        if "updated_since" in args:
            query = query.where(Form.updated_at >= args["updated_since"])
        if "cursor" in args:
            updated_at, form_id = pagination.decode(args["cursor"], 2)
            from datetime import datetime

            after = datetime.fromisoformat(updated_at)
            query = query.where(
                (Form.updated_at > after) | ((Form.updated_at == after) & (Form.id > form_id))
            )
        limit = args["limit"]
        rows = database.session().scalars(
            query.order_by(Form.updated_at, Form.id).limit(limit + 1)
        ).all()
        return pagination.page(
            list(rows), limit, lambda f: pagination.encode(f.updated_at.isoformat(), f.id)
        )


def _json(body, status, *, replayed=False, location=None) -> Response:
    response = jsonify(body)
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if location:
        response.headers["Location"] = location
    return response


@blp.get("/<form_id>")
@require(*OWNERS)
@blp.response(200, FormSchema)
def get_form(form_id):
    """A form in full, with the traveller's details."""
    return with_etag(forms.get_visible(database.session(), current_principal(), form_id))


@blp.post("/<form_id>/cancel")
@require("retailer", "intermediary", "admin")
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
@require("retailer", "intermediary", "admin")
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
    """The form's audit trail, oldest first."""
    session = database.session()
    form = forms.get_visible(session, current_principal(), form_id)
    rows = session.scalars(select(Event).where(Event.form_id == form.id).order_by(Event.id)).all()
    return {"items": rows, "next_cursor": None}


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
