"""Webhooks: retailers and intermediaries are told of their forms' status
changes the moment they commit, following the Standard Webhooks
specification (standardwebhooks.com).

A webhook belongs to a retailer or an intermediary; a form's events go to
its retailer's webhooks and to those of the form's intermediary (the one
the retailer worked with when the form was issued: the same parties that
can see the form). ``enqueue`` writes the outbox rows in the transaction of
the status change (a scan reads who listens before its write and, on
PostgreSQL, writes the rows in its event's own statement:
``read_before_write``, ``with_the_write``), so a committed change always
produces its deliveries and a rolled-back one never does; the delivery
worker (``deliveries.py``) sends them afterwards.

Signatures come from the ``standardwebhooks`` package, the specification's
reference implementation: HMAC-SHA256 over ``{id}.{timestamp}.{body}``,
keyed with the base64-decoded secret, sent as ``v1,<base64>``.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace
from urllib.parse import urlsplit

import standardwebhooks
from sqlalchemy import (ARRAY, Select, and_, bindparam, exists, false, func, insert, literal_column, or_, select,
                        update)
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from .. import custody
from ..auth import Principal
from ..database import HotStatement
from ..models import (
    ExitPoint,
    Form,
    FormLine,
    Retailer,
    Webhook,
    WebhookDelivery,
)
from ..problems import Problem

EVENT_TYPES = (
    "form.validated",
    "form.partially_validated",
    "form.rejected",
    "form.check_required",
    "form.expired",
    "form.cancelled",
    "form.refunded",
)
OWNER_ROLES = ("retailer", "intermediary")
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64
_VALIDATED = ("validated", "partially_validated", "refunded")


# --- identifiers and signatures ------------------------------------------------

def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(10)


def new_message_id() -> str:
    # No "." in an id: it separates the parts of the signed content.
    return "msg_" + secrets.token_urlsafe(18)


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt to send ``body``."""
    signature = standardwebhooks.Webhook(secret).sign(
        message_id, datetime.fromtimestamp(timestamp, timezone.utc), body
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "Content-Type": "application/json",
        "User-Agent": "taxfree-webhooks/1",
    }


# --- where webhooks may point ----------------------------------------------------

# IPv6 forms that carry an IPv4 address, judged by the address they carry:
# a NAT64 gateway, a 6to4 relay or the host's own stack turns them into a
# connection to that IPv4 address, which may be 127.0.0.1 or 10.0.0.5.
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052, the well-known prefix
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # RFC 3056
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
# Forms never needed to reach a public receiver, refused whatever they
# carry: local-use NAT64 (RFC 8215, where the IPv4 address sits depends on
# the operator's prefix length) and the deprecated IPv4-compatible ::a.b.c.d.
ALWAYS_REFUSED = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("::/96"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (both ends of a Teredo
    address), or none."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.teredo is not None:
        return list(ip.teredo)  # the server, and the client (un-obfuscated by ipaddress)
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip in NAT64 or ip in IPV4_TRANSLATED:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a public unicast address (not loopback,
    private, link-local, shared, reserved or documentation space), also
    when it is an IPv6 address carrying an IPv4 one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in ALWAYS_REFUSED):
            return False
        carried = embedded_ipv4(ip)
        if carried:
            return all(v4.is_global and not v4.is_multicast for v4 in carried)
    return ip.is_global and not ip.is_multicast


def _url_problem(message: str) -> Problem:
    return Problem(422, "invalid_webhook_url", message, errors={"url": [message]})


def check_url(url: str, *, allow_private: bool, resolve=socket.getaddrinfo) -> str:
    """Refuse URLs that are not https (plain http too with
    ``allow_private``, for development and tests) or whose host resolves to
    a private or loopback address (server-side request forgery); the worker
    checks both again at every delivery, before it connects."""
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        raise _url_problem("This is not a valid URL (check the host name and port).")
    if parts.scheme not in ("http", "https") or not hostname:
        raise _url_problem("Give an absolute https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise _url_problem("Put no user name or password in the URL; deliveries are signed instead.")
    port = port or (443 if parts.scheme == "https" else 80)
    if allow_private:
        return url
    if parts.scheme != "https":
        raise _url_problem("Give an https:// URL: events are only sent encrypted.")
    try:
        addresses = {info[4][0] for info in resolve(hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError, ValueError):
        raise _url_problem(f"The host name {hostname} does not resolve.")
    private = sorted(a for a in addresses if not is_public_address(a))
    if private:
        raise _url_problem(
            f"{hostname} resolves to {private[0]}, a private or loopback address; "
            "webhooks are only sent to public addresses."
        )
    return url


# --- subscriptions ------------------------------------------------------------------

def visible_webhooks(principal: Principal) -> Select:
    """The webhooks ``principal``'s organisation owns, deleted ones left out."""
    query = select(Webhook).where(Webhook.deleted_at.is_(None))
    if principal.role == "retailer":
        return query.where(Webhook.retailer_id == principal.retailer_id)
    if principal.role == "intermediary":
        return query.where(Webhook.intermediary_id == principal.intermediary_id)
    return query.where(false())


def get_owned(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    webhook = session.scalar(visible_webhooks(principal).where(Webhook.id == webhook_id))
    if webhook is None:
        raise Problem(404, "webhook_not_found", f"No webhook {webhook_id} that you own.")
    return webhook


def register(
    session: Session, principal: Principal, url: str, events: list[str], *,
    allow_private: bool, max_per_owner: int, now: datetime,
) -> tuple[Webhook, str]:
    """Add a webhook for ``principal``'s retailer or intermediary; returns
    it and its secret, to be shown this once (the database holds it
    encrypted: api/custody.py)."""
    if principal.role not in OWNER_ROLES:
        raise Problem(403, "forbidden", "Only retailers and intermediaries register webhooks.")
    check_url(url, allow_private=allow_private)
    owned = session.scalar(select(func.count()).select_from(visible_webhooks(principal).subquery()))
    if owned >= max_per_owner:
        raise Problem(409, "too_many_webhooks",
                      f"You have {owned} webhooks, the most allowed; delete one first.")
    secret = new_secret()
    webhook = Webhook(
        id=new_webhook_id(),
        url=url,
        events=[e for e in EVENT_TYPES if e in set(events)],
        secret=custody.seal(custody.cipher_of(session), secret),
        retailer_id=principal.retailer_id if principal.role == "retailer" else None,
        intermediary_id=principal.intermediary_id if principal.role == "intermediary" else None,
        created_by=principal.actor,
        created_at=now,
    )
    session.add(webhook)
    session.flush()
    # It listens from now on, also to this transaction's events.
    session.info.pop(_UNHEARD, None)
    return webhook, secret


def delete(session: Session, webhook: Webhook, now: datetime) -> None:
    """Stop a webhook: nothing more is sent to it, pending deliveries included."""
    webhook.deleted_at = now
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.status == "pending")
        .values(status="cancelled", next_attempt_at=None)
    )


# --- the outbox -----------------------------------------------------------------------

def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


# A form's listeners: the live webhooks of its retailer and of its
# intermediary, with the form's columns and its lines on every row (one row
# per webhook and line: a handful), so that one statement, built once and
# sent as a hot statement, reads all a payload needs.
_F, _SHOP, _EXIT, _HOOKS = Form.__table__, Retailer.__table__, ExitPoint.__table__, Webhook.__table__
_LINES = FormLine.__table__
_OWNED_BY_FORM = and_(_HOOKS.c.deleted_at.is_(None),
                      or_(_HOOKS.c.retailer_id == _F.c.retailer_id, _HOOKS.c.intermediary_id == _F.c.intermediary_id))
_LISTENERS = HotStatement(
    select(
        _HOOKS.c.id.label("webhook_id"), _HOOKS.c.events,
        _F.c.id, _F.c.status, _SHOP.c.vat_number.label("retailer_vat"), _F.c.invoice_number, _F.c.currency,
        _F.c.total_cents, _F.c.vat_cents, _F.c.refund_cents, _F.c.export_deadline,
        _F.c.validated_at, _F.c.validated_total_cents, _F.c.validated_vat_cents,
        _F.c.validated_refund_cents, _F.c.refunded_cents, _F.c.refunded_at,
        _EXIT.c.code.label("exit_point"),
        _LINES.c.line, _LINES.c.description, _LINES.c.quantity, _LINES.c.total_cents.label("line_total_cents"),
        _LINES.c.vat_cents.label("line_vat_cents"), _LINES.c.present,
    )
    .select_from(_F.join(_SHOP, _F.c.retailer_id == _SHOP.c.id)
                 .outerjoin(_EXIT, _F.c.exit_point_id == _EXIT.c.id)
                 .join(_HOOKS, _OWNED_BY_FORM)
                 .outerjoin(_LINES, _LINES.c.form_id == _F.c.id))
    .where(_F.c.id == bindparam("form_id"))
    .order_by(_HOOKS.c.id, _LINES.c.line)
)
_Listening = namedtuple("_Listening", _LISTENERS.statement.selected_columns.keys())
_DELIVERY_COLUMNS = ("webhook_id", "event_id", "event_type", "message_id", "payload", "status", "attempt_count",
                     "failures", "next_attempt_at", "retry_window_start", "created_at")
_DELIVERIES = WebhookDelivery.__table__
_INSERT_DELIVERY = HotStatement(_DELIVERIES.insert().values({name: bindparam(name) for name in _DELIVERY_COLUMNS}))

# Forms whose transaction has read that no webhook listens to them (the
# scan's facts query carries that: ``listened``): their events skip the
# outbox's statements. Forgotten when the transaction ends.
_UNHEARD = "forms_nobody_listens_to"
# Who listens to a form's next event, read before the write that makes it
# (``read_before_write``), by form id and event type. Forgotten when the
# transaction ends.
_READ_BEFORE = "listeners_read_before_write"


@dataclass(frozen=True)
class Outbox:
    """The outbox rows of one event, but for the event's id: one per
    webhook that wants it (none, maybe), all with one message id and
    body."""

    hooks: list[str]
    type: str
    message_id: str
    body: str
    at: datetime

    def rows(self, event_id: int) -> list[dict]:
        return [{"webhook_id": hook, "event_id": event_id, "event_type": self.type, "message_id": self.message_id,
                 "payload": self.body, "status": "pending", "attempt_count": 0, "failures": 0,
                 "next_attempt_at": self.at, "retry_window_start": self.at, "created_at": self.at}
                for hook in self.hooks]


def listened():
    """A column for a query on ``forms``: whether a live webhook of the
    form's retailer or intermediary exists."""
    return exists().where(_OWNED_BY_FORM)


def nobody_listens(session: Session, form_id: str) -> None:
    """This transaction read that no webhook listens to ``form_id``'s
    events (``listened``): as if ``enqueue`` had looked itself, at the
    moment that read was made."""
    session.info.setdefault(_UNHEARD, set()).add(form_id)


def read_before_write(session: Session, form_id: str, event_type: str, written: dict) -> None:
    """Read now who listens to the ``event_type`` event that this
    transaction's next write of ``form_id`` makes, and what its payload shows
    of the form, instead of once the write is made: a write that takes its
    numbers in its own statement holds the counters every writer waits for
    from then until it commits (api/services/audit.py). ``written``: the
    columns the write sets, by their names in the payload's read (the
    others stay as read: nothing changes them while the form's status, which
    the write compares and sets, stays). As ``enqueue`` itself would read,
    at the moment this read is made."""
    if event_type not in EVENT_TYPES:
        return
    changed = {name: value for name, value in written.items() if name in _Listening._fields}
    rows = [_Listening(*row)._replace(**changed)
            for row in _LISTENERS.execute(session, {"form_id": form_id}).fetchall()]
    session.info.setdefault(_READ_BEFORE, {})[(form_id, event_type)] = rows


def with_the_write(session: Session, event: dict) -> Outbox | None:
    """The outbox rows of an event about to be written (``event``: its
    column values, not yet its id), from the listeners read before its
    write (``read_before_write``), for the statement that writes the event
    to write them too, instead of ``enqueue`` once it is written; None if
    nothing was read (``enqueue`` then does as usual)."""
    rows = _read_before(session, event["form_id"], event["type"])
    return None if rows is None else _outbox(SimpleNamespace(**event), rows)


def _read_before(session: Session, form_id: str, event_type: str) -> list | None:
    """The listeners ``read_before_write`` read for this event, once."""
    return session.info.get(_READ_BEFORE, {}).pop((form_id, event_type), None)


@sqlalchemy_event.listens_for(Session, "after_transaction_end")
def _forget_unheard(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_UNHEARD, None)
        session.info.pop(_READ_BEFORE, None)


def enqueue(session: Session, event) -> int:
    """Write one outbox row per webhook that wants ``event``, in the
    session's transaction; returns how many. Called by ``audit.record``
    with the event as written (``audit.Written``)."""
    if event.type not in EVENT_TYPES or event.form_id is None \
            or event.form_id in session.info.get(_UNHEARD, ()):
        return 0
    # The form as this transaction leaves it: read before the write, with
    # what it wrote; or read now (audit.record flushed the ORM's changes, and
    # status changes are often plain UPDATE statements).
    rows = _read_before(session, event.form_id, event.type)
    if rows is None:
        rows = [_Listening(*row) for row in _LISTENERS.execute(session, {"form_id": event.form_id}).fetchall()]
    outbox = _outbox(event, rows)
    # Nothing reads them back in this request: plain INSERTs, no ORM
    # objects; one per webhook (the form's shop and intermediary have a few).
    for row in outbox.rows(event.id):
        _INSERT_DELIVERY.execute(session, row)
    return len(outbox.hooks)


def outbox_insert(event_id, event_type, at):
    """The INSERT of one event's outbox rows (``Outbox``, as the parameters
    ``outbox_hooks``, ``outbox_message_id`` and ``outbox_payload``), for a
    statement that writes the event: ``event_id``, ``event_type`` and ``at``
    are its expressions there for the event's id, type and time."""
    hook = func.unnest(bindparam("outbox_hooks", type_=ARRAY(_DELIVERIES.c.webhook_id.type))).column_valued("hook")
    rows = select(hook, event_id, event_type, bindparam("outbox_message_id", type_=_DELIVERIES.c.message_id.type),
                  bindparam("outbox_payload", type_=_DELIVERIES.c.payload.type), literal_column("'pending'"),
                  literal_column("0"), literal_column("0"), at, at, at)
    # None when the event was not written (a compare-and-set that lost).
    return insert(_DELIVERIES).from_select(_DELIVERY_COLUMNS, rows.where(event_id.is_not(None)))


def _outbox(event, rows: list) -> Outbox:
    """``event``'s outbox rows for the webhooks among ``rows`` (the
    listeners' read) that want it."""
    hooks = list(dict.fromkeys(row.webhook_id for row in rows if event.type in row.events))
    if not hooks:
        return Outbox([], event.type, "", "", event.at)
    # Each line once (the rows repeat them per webhook), in order.
    lines = list({row.line: row for row in rows if row.line is not None}.values())
    return Outbox(hooks, event.type, new_message_id(),
                  json.dumps(_payload(event, rows[0], lines), separators=(",", ":")), event.at)


def _payload(event, form, lines) -> dict:
    """The webhook body: what happened to the form, without the
    traveller's personal data (the form itself is one GET away)."""

    def validated(present: bool | None) -> bool | None:
        if form.status in _VALIDATED:
            return present is not False
        return False if form.status == "rejected" else None

    data = {
        "form_id": form.id,
        "status": form.status,
        "at": _iso(event.at),
        "exit_point": event.exit_point or form.exit_point,
        "retailer_vat": form.retailer_vat,
        "invoice_number": form.invoice_number,
        "currency": form.currency,
        "total_cents": form.total_cents,
        "vat_cents": form.vat_cents,
        "refund_cents": form.refund_cents,
        "export_deadline": form.export_deadline.isoformat(),
        "validated_at": _iso(form.validated_at),
        "validated_total_cents": form.validated_total_cents,
        "validated_vat_cents": form.validated_vat_cents,
        "validated_refund_cents": form.validated_refund_cents,
        "refunded_cents": form.refunded_cents,
        "refunded_at": _iso(form.refunded_at),
        "reason_code": (event.data or {}).get("reason_code"),
        "lines": [
            {"line": l.line, "description": l.description, "quantity": l.quantity,
             "total_cents": l.line_total_cents, "vat_cents": l.line_vat_cents, "validated": validated(l.present)}
            for l in lines
        ],
    }
    return {"type": event.type, "timestamp": _iso(event.at), "data": data}
