"""What shops (retailers and intermediaries) learn of customs' work on
their forms.

The audit trail is written for customs and auditors: it names the risk
rules that sent a traveller to the desk, with their details (thresholds,
watch lists, the random sample), and the officers who decided. A shop sees
what happened to its form, when and where ("check required at AMS"), never
why customs chose to check it nor which officer did: a shop that learnt the
rules could steer its forms around them, and an officer's identity is not a
shop's business. Every place a shop reads the trail goes through here
(GET /api/v1/forms/{id}/events and the portal's timeline); webhook bodies,
the change feed, the CSV export and the form itself carry no check data.

Data is shown by allow-list: a field, or an event type, not listed here is
not shown to shops, so a new detail added to the trail stays with customs
until someone decides otherwise.

The traveller's app: a shop may learn that its traveller validated the
export in the app ("validated via the app"), nothing more. The app's
evidence (install, location, sensor posts), the app's risk rules and why
the app refused to validate somewhere (the traveller was not in the zone,
the trip did not fit) stay with customs, as the kiosk's risk rules do; the
traveller's install is shown as ``traveller``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth import Principal
from ..models import Event, User
from .forms import READ_ALL, RETAIL_ROLES
from .scans import REFUSALS

# How shops see who did something that is not one of their own users.
CUSTOMS = "customs"  # an officer or an administrator
KIOSK = "kiosk"  # a device at an exit point (its exit point is on the event)
SYSTEM = "system"  # a scheduled job (expiry, retention)
TRAVELLER = "traveller"  # the traveller, in their own app

# The reasons a scan gives that shops may read: the kiosk's, which say
# what became of the form (cancelled, deadline passed, validated
# elsewhere ...). The app's reasons for not validating where the phone
# was (outside the zone, wrong day or airport) are the traveller's
# evidence, not the form's state: not listed, not shown.
SCAN_REASONS_SHOWN = frozenset(REFUSALS) | {"selected_for_check", "partially_validated"}

_DECISION = ("by", "reason_code", "lines", "validated_total_cents", "decided_at")
SHOWN_TO_SHOPS: dict[str, tuple[str, ...]] = {
    "form.issued": ("total_cents", "refund_cents"),
    "form.scanned": ("verdict", "reason_code", "scanned_at", "queued", "channel"),
    # Where the traveller was sent (the event's exit point), not why.
    "form.check_required": (),
    "form.check_moved": ("from_exit_point",),
    "form.validated": _DECISION + ("channel",),
    "form.partially_validated": _DECISION,
    "form.rejected": _DECISION,
    "form.expired": (),
    "form.cancelled": (),
    "form.refunded": ("amount_cents", "paid_at"),
    "form.personal_data_removed": ("retention_days",),
}


@dataclass(frozen=True)
class EventView:
    """One event of the trail as its reader may see it."""

    id: int
    type: str
    at: datetime
    actor: str
    exit_point: str | None
    data: dict = field(default_factory=dict)


def sees_everything(principal: Principal) -> bool:
    """Customs staff read the trail as it was written."""
    return principal.role in READ_ALL


def for_reader(session: Session, principal: Principal, events: list[Event]) -> list[EventView]:
    """``events`` as ``principal`` may see them."""
    if sees_everything(principal):
        return [EventView(e.id, e.type, e.at, e.actor, e.exit_point, dict(e.data or {})) for e in events]
    return for_shops(session, events)


def for_shops(session: Session, events: list[Event]) -> list[EventView]:
    """``events`` as a form's retailer or intermediary may see them."""
    roles = _user_roles(session, events)
    return [
        EventView(e.id, e.type, e.at, actor_for_shops(e.actor, roles), e.exit_point,
                  data_for_shops(e.type, e.data or {}))
        for e in events
    ]


def data_for_shops(event_type: str, data: dict) -> dict:
    """An event's data as shops may see it: the fields allowed for its type,
    a scan's reason only when it is one of the form's (``SCAN_REASONS_SHOWN``),
    and how the traveller came (``channel``) only with a validation."""
    shown = {k: v for k, v in data.items() if k in SHOWN_TO_SHOPS.get(event_type, ())}
    if event_type == "form.scanned":
        if shown.get("reason_code") is not None and shown["reason_code"] not in SCAN_REASONS_SHOWN:
            shown["reason_code"] = None
        if shown.get("verdict") != "validated":
            shown.pop("channel", None)
    return shown


def actor_for_shops(actor: str, roles: dict[str, str]) -> str:
    """A retail user stays named; customs' people are ``customs``, devices
    ``kiosk``, the traveller's app ``traveller``, scheduled jobs ``system``.
    ``roles`` maps user ids to roles."""
    kind, _sep, ident = actor.partition(":")
    if kind == "user" and roles.get(ident) in RETAIL_ROLES:
        return actor
    if kind == "device":
        return KIOSK
    if kind == "system":
        return SYSTEM
    if kind == "traveller":
        return TRAVELLER
    return CUSTOMS


def _user_roles(session: Session, events: list[Event]) -> dict[str, str]:
    ids = {int(ident) for kind, _sep, ident in (e.actor.partition(":") for e in events)
           if kind == "user" and ident.isdigit()}
    if not ids:
        return {}
    return {str(user_id): role for user_id, role in session.execute(
        select(User.id, User.role).where(User.id.in_(ids)))}
