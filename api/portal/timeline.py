"""A form's audit trail (the events table) as the timeline people read:
what happened, when, and who did it, without naming customs officers."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ..models import Device, Event, User
from . import i18n
from .i18n import gettext as _
from .labels import REASON_TEXT, rule_label


def _actor(db: Session, actor: str) -> str:
    kind, _sep, ident = actor.partition(":")
    if kind == "device":
        device = db.get(Device, ident)
        return _("Kiosk at {exit_point}").format(exit_point=device.exit_point.code) if device else _("Kiosk")
    if kind == "user" and ident.isdigit():
        user = db.get(User, int(ident))
        if user is None:
            return actor
        # Officers are not named to shops.
        return _("Customs officer") if user.role == "officer" else user.username
    if kind == "system":  # "system", or a system job such as "system:retention"
        return _("System")
    return actor


def entry(db: Session, event: Event) -> dict:
    """One event: its time, a sentence, and who did it."""
    data = event.data or {}
    kind = event.type
    if kind == "form.issued":
        text = _("Form issued")
    elif kind == "form.scanned":
        verdicts = {"validated": _("validated"), "check_required": _("sent to the customs desk"),
                    "refused": _("refused")}
        text = _("Scanned: {verdict}").format(verdict=verdicts.get(data.get("verdict"), data.get("verdict", "")))
    elif kind == "form.check_required":
        reasons = ", ".join(rule_label(r.get("code", "")) for r in data.get("fired_rules", []))
        text = _("Customs check required") + (f" ({reasons})" if reasons else "")
    elif kind == "form.validated":
        text = _("Export validated")
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
    exit_point = None if event.actor.startswith("device:") else event.exit_point
    return {"at": event.at, "text": text, "who": _actor(db, event.actor), "exit_point": exit_point, "type": kind}

