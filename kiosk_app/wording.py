"""What the kiosk says about each outcome, in the traveller's language.

Kept apart from the widgets so the words can be tested (and reviewed)
without a window. Every English text here is a gettext message id; the
catalogs are ``shared/i18n/<language>.po``.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.i18n import LANGUAGES, translate

from . import desk
from kivy_common.text import isolate


def _(message: str) -> str:
    """Marks a message id for the catalogs; translated where it is shown."""
    return message


@dataclass(frozen=True)
class Card:
    kind: str  # the outcome kind: drives colour, icon and sound
    title: str
    body: str


REFUSAL_REASONS = {
    "malformed_token": _("This is not a tax-free form code."),
    "unknown_key": _("This form was not issued by a known tax-free system."),
    "bad_signature": _("This form code has been altered and cannot be accepted."),
    "form_not_found": _("This form is not known. Ask the shop or your refund company."),
    "form_cancelled": _("This form was cancelled by the shop."),
    "deadline_passed": _("The export deadline for this form passed on {date}."),
    "rejected_at_check": _("Customs refused the export of these goods at a physical check."),
    "validated_elsewhere": _("This form was already validated at another exit point."),
}

# Shown on every screen where it matters (travellers' complaint no. 3).
BEFORE_CHECK_IN = _("Validate your tax-free forms before you check in your luggage.")


class Wording:
    """Translates for one language; values are isolated in right-to-left text."""

    def __init__(self, language: str):
        self.language = language
        self.rtl = LANGUAGES[language].rtl

    def __call__(self, message: str, **fields) -> str:
        if self.rtl:
            fields = {k: isolate(v) for k, v in fields.items()}
        return translate(self.language, message, **fields)

    def card(self, o: desk.Outcome, desk_location: str | None = None) -> Card:
        t = self
        desk_at = o.desk_location or desk_location
        where = t(_("The customs desk is at: {desk}."), desk=desk_at) if desk_at else ""
        if o.kind == desk.VALIDATED:
            lines = [t(_("Export validated for the goods you showed."))] if o.reason_code == "partially_validated" else []
            if o.payer:
                lines.append(t(_("Your refund will be paid by {payer}."), payer=o.payer))
            return Card(o.kind, t(_("Export validated")), "\n".join(lines + self._form_line(o)))
        if o.kind == desk.CHECK_REQUIRED:
            lines = [t(_("Take your goods, passport and this form to the customs desk.")), where,
                     t(BEFORE_CHECK_IN)]
            return Card(o.kind, t(_("Go to the customs desk")), "\n".join([x for x in lines if x] + self._form_line(o)))
        if o.kind == desk.REFUSED:
            reason = REFUSAL_REASONS.get(o.reason_code or "", _("This form cannot be validated."))
            date = o.export_deadline.isoformat() if o.export_deadline else "?"
            return Card(o.kind, t(_("Not validated")), "\n".join([t(reason, date=date)] + self._form_line(o)))
        if o.kind == desk.RECORDED:
            lines = [t(_("The system is offline. Your form is genuine and your scan is saved: "
                         "it will be sent automatically. You do not need to scan it again.")),
                     t(_("If you want certainty before you fly, go to the customs desk.")), where]
            if o.passport_expired:
                lines.insert(0, t(_("This passport has expired. Show it to a customs officer.")))
            return Card(o.kind, t(_("Scan recorded")), "\n".join([x for x in lines if x] + self._form_line(o)))
        if o.kind == desk.UNVERIFIED:
            # Never "genuine", never "recorded": the kiosk could check nothing.
            lines = [t(_("The system is offline, so this kiosk cannot check your forms now.")),
                     t(_("Take your goods, passport and this form to the customs desk.")), where,
                     t(BEFORE_CHECK_IN)]
            if o.passport_expired:
                lines.insert(0, t(_("This passport has expired. Show it to a customs officer.")))
            return Card(o.kind, t(_("Go to the customs desk")),
                        "\n".join([x for x in lines if x] + self._form_line(o)))
        if o.kind == desk.DUPLICATE:
            return Card(o.kind, t(_("Already scanned")),
                        t(_("You already scanned this form. Scan your next form or press Done.")))
        if o.kind == desk.NOT_LAST_EXIT:
            lines = [t(_("Your flight goes to {destination}, inside the EU."), destination=o.destination),
                     t(_("Validate your forms at customs at the last EU airport before you leave the EU."))]
            if o.validate_at:
                lines.append(t(_("On your boarding pass that is: {airport}."), airport=o.validate_at))
            return Card(o.kind, t(_("This is not your last airport in the EU")), "\n".join(lines))
        if o.kind == desk.LAST_EXIT_OK:
            return Card(o.kind, t(_("You are at the right airport")),
                        t(_("Your flight goes to {destination}, outside the EU: validate your forms here, "
                            "before you check in your luggage."), destination=o.destination))
        if o.kind == desk.NO_OPEN_FORMS:
            lines = [t(_("There are no open tax-free forms for this passport. "
                         "Scan the QR code on your form, or ask the shop."))]
            if o.passport_expired:
                lines.insert(0, t(_("This passport has expired. Show it to a customs officer.")))
            return Card(o.kind, t(_("No open forms")), "\n".join(lines))
        if o.kind == desk.OUT_OF_SERVICE:
            return Card(o.kind, t(_("This kiosk is out of service")),
                        "\n".join(x for x in [t(_("Please go to the customs desk.")), where] if x))
        if o.kind == desk.PAIRED:
            return Card(o.kind, t(_("Kiosk ready")), t(_("This kiosk is now paired at {exit_point}."),
                                                      exit_point=o.destination))
        if o.kind == desk.PAIRING_REFUSED:
            return Card(o.kind, t(_("Pairing refused")),
                        t(_("This pairing code is used, expired or unknown, or the kiosk is already paired.")))
        return Card(desk.UNREADABLE, t(_("Could not read this code")),
                    t(_("Scan the QR code on your tax-free form, your passport or your boarding pass.")))

    def _form_line(self, o: desk.Outcome) -> list[str]:
        return [self(_("Form {form_id}"), form_id=o.form_id)] if o.form_id else []
