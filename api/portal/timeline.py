"""A form's audit trail (the events table) as the timeline a shop reads:
what happened, when, where and who did it, as the shop may see it
(``api.services.shop_view``): not why customs checked the form, and no
officer named."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ..models import Event, User
from ..services import shop_view
from . import i18n
from .i18n import gettext as _
from .labels import REASON_TEXT


def _actor(db: Session, actor: str, exit_point: str | None) -> str:
    if actor == shop_view.KIOSK:
        return _("Kiosk at {exit_point}").format(exit_point=exit_point) if exit_point else _("Kiosk")
    if actor == shop_view.CUSTOMS:
        return _("Customs")
    if actor == shop_view.SYSTEM:
        return _("System")
    if actor == shop_view.TRAVELLER:
        return _("Traveller's app")
    kind, _sep, ident = actor.partition(":")
    user = db.get(User, int(ident)) if kind == "user" and ident.isdigit() else None
    return user.username if user is not None else actor


def _at(text: str, exit_point: str | None) -> str:
    return text.format(exit_point=exit_point) if exit_point else ""


def entries(db: Session, events: list[Event]) -> list[dict]:
    """The timeline of ``events``, oldest first."""
    return [entry(db, e) for e in shop_view.for_shops(db, events)]


def entry(db: Session, event: shop_view.EventView) -> dict:
    """One event: its time, a sentence, and who did it."""
    data = event.data
    kind = event.type
    if kind == "form.issued":
        text = _("Form issued")
    elif kind == "form.scanned":
        verdicts = {"validated": _("validated"), "check_required": _("sent to the customs desk"),
                    "refused": _("refused")}
        text = _("Scanned: {verdict}").format(verdict=verdicts.get(data.get("verdict"), data.get("verdict", "")))
    elif kind == "form.check_required":
        text = _at(_("Customs check required at {exit_point}"), event.exit_point) or _("Customs check required")
    elif kind == "form.check_moved":
        text = _at(_("Customs check moved to the desk at {exit_point}"), event.exit_point)
    elif kind == "form.validated":
        text = _("Export validated in the traveller's app") if data.get("channel") == "app" \
            else _("Export validated")
    elif kind == "form.partially_validated":
        text = _("Export validated for part of the goods")
    elif kind == "form.rejected":
        reason = data.get("reason_code")
        text = _("Export refused by customs") + (f" ({_(REASON_TEXT.get(reason, reason))})" if reason else "")
    elif kind == "form.cancelled":
        text = _("Form cancelled")
    elif kind == "form.expired":
        text = _("Expired: the export deadline passed")
    elif kind == "form.personal_data_removed":
        text = _("Traveller's personal data removed after the retention period")
    elif kind == "form.refunded":
        amount = data.get("amount_cents")
        text = _("Refund paid") + (f": {i18n.money(amount)}" if isinstance(amount, int) else "")
    else:
        text = kind
    # A kiosk's name already says where it stands.
    exit_point = None if event.actor == shop_view.KIOSK else event.exit_point
    return {"at": event.at, "text": text, "who": _actor(db, event.actor, event.exit_point),
            "exit_point": exit_point, "type": kind}
