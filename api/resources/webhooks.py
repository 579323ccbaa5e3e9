"""Webhooks: register, list, delete; the deliveries of each and replays."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from .blueprint import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import database, pagination
from ..auth import current_principal, require
from ..models import Webhook, WebhookDelivery, utcnow
from ..problems import Problem
from ..schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryListArgs,
    WebhookDeliverySchema,
    WebhookListArgs,
    WebhookSchema,
    page_of,
)
from ..services import deliveries, webhooks

blp = Blueprint(
    "webhooks", __name__, url_prefix="/api/v1/webhooks",
    description="Status changes pushed to retailers and intermediaries (Standard Webhooks). "
                "Each delivery is a POST with the headers webhook-id (the same on every "
                "attempt), webhook-timestamp and webhook-signature (v1, then the base64 "
                "HMAC-SHA256 of id.timestamp.body keyed with the base64-decoded secret); "
                "the body is a WebhookEvent.",
)

OWNERS = webhooks.OWNER_ROLES


BIGINT = 2**63 - 1


def _invalid_cursor() -> Problem:
    return Problem(400, "invalid_cursor", "The cursor is not one this API gave out.",
                   errors={"cursor": ["Not a valid cursor."]})


def _cursor_id(args) -> int | None:
    if "cursor" not in args:
        return None
    value = pagination.decode(args["cursor"], 1)[0]
    if type(value) is not int or not 0 < value <= BIGINT:
        raise _invalid_cursor()
    return value


@blp.route("")
class Webhooks(MethodView):
    @require(*OWNERS)
    @blp.arguments(WebhookCreate)
    @blp.response(201, WebhookCreated)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body):
        """Register a webhook for your shop's or your company's forms.

        The response holds the signing secret, shown this once. The URL must
        be https, and URLs whose host resolves to a private or loopback
        address (IPv6 forms that carry one included) are refused (422)."""
        session = database.session()
        config = current_app.config
        webhook, secret = webhooks.register(
            session, current_principal(), body["url"], body["events"],
            allow_private=config["WEBHOOKS_ALLOW_PRIVATE"],
            max_per_owner=config["WEBHOOKS_MAX_PER_OWNER"], now=utcnow(),
        )
        session.commit()
        shown = {"id": webhook.id, "url": webhook.url, "events": webhook.events,
                 "created_at": webhook.created_at, "secret": secret}
        return shown, 201, {"Location": f"/api/v1/webhooks/{webhook.id}"}

    @require(*OWNERS)
    @blp.arguments(WebhookListArgs, location="query")
    @blp.response(200, page_of(WebhookSchema))
    def get(self, args):
        """Your webhooks, oldest first."""
        query = webhooks.visible_webhooks(current_principal()).order_by(Webhook.created_at, Webhook.id)
        if "cursor" in args:
            after_id = pagination.decode(args["cursor"], 1)[0]
            after = database.session().get(Webhook, after_id) if isinstance(after_id, str) else None
            if after is None:
                raise _invalid_cursor()
            query = query.where(
                (Webhook.created_at > after.created_at)
                | ((Webhook.created_at == after.created_at) & (Webhook.id > after.id))
            )
        limit = args["limit"]
        rows = database.session().scalars(query.limit(limit + 1)).all()
        return pagination.page(list(rows), limit, lambda w: pagination.encode(w.id))


@blp.route("/<webhook_id>")
class WebhookItem(MethodView):
    @require(*OWNERS)
    @blp.response(200, WebhookSchema)
    def get(self, webhook_id):
        """One of your webhooks (the secret is not shown again)."""
        return webhooks.get_owned(database.session(), current_principal(), webhook_id)

    @require(*OWNERS)
    @blp.response(204)
    def delete(self, webhook_id):
        """Delete a webhook; its pending deliveries are cancelled."""
        session = database.session()
        webhooks.delete(session, webhooks.get_owned(session, current_principal(), webhook_id), utcnow())
        session.commit()


@blp.get("/<webhook_id>/deliveries")
@require(*OWNERS)
@blp.arguments(WebhookDeliveryListArgs, location="query")
@blp.response(200, page_of(WebhookDeliverySchema))
def list_deliveries(args, webhook_id):
    """The webhook's deliveries, newest first, each with its attempts and
    the receiver's answers."""
    session = database.session()
    webhook = webhooks.get_owned(session, current_principal(), webhook_id)
    query = (
        select(WebhookDelivery)
        .options(selectinload(WebhookDelivery.attempts))
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.id.desc())
    )
    if "status" in args:
        query = query.where(WebhookDelivery.status == args["status"])
    before = _cursor_id(args)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    limit = args["limit"]
    rows = session.scalars(query.limit(limit + 1)).all()
    return pagination.page(list(rows), limit, lambda d: pagination.encode(d.id))


@blp.post("/<webhook_id>/deliveries/<int:delivery_id>/retry")
@require(*OWNERS)
@blp.response(202, WebhookDeliverySchema)
@blp.alt_response(409, response="CONFLICT")
def retry_delivery(webhook_id, delivery_id):
    """Send a delivery again as soon as a worker runs, with a fresh
    three-day retry window: after a failure, or to replay one that
    arrived (under the same webhook-id)."""
    session = database.session()
    webhook = webhooks.get_owned(session, current_principal(), webhook_id)
    delivery = session.scalar(
        select(WebhookDelivery)
        .options(selectinload(WebhookDelivery.attempts))
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook.id)
    ) if delivery_id <= BIGINT else None
    if delivery is None:
        raise Problem(404, "delivery_not_found", f"Webhook {webhook.id} has no delivery {delivery_id}.")
    if delivery.status == "cancelled":
        raise Problem(409, "delivery_cancelled", "This delivery was cancelled and cannot be sent.")
    delivery = deliveries.retry_now(session, delivery, utcnow())
    session.commit()
    return delivery
