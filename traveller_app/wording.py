"""What the traveller's app says, in the traveller's language.

Every English text is a gettext message id in the shared catalogs
(``shared/i18n/<language>.po``); placeholders are filled after lookup and
isolated in right-to-left text.
"""
from __future__ import annotations

from shared.i18n import LANGUAGES, translate
from shared.money import format_eur

from kivy_common.text import isolate

from . import gate, trip


def _(message: str) -> str:
    """Marks a message id for the catalogs; translated where it is shown."""
    return message


ENTRY_ERRORS = {
    "number": _("Type the passport number as printed (letters and digits)."),
    "country": _("Type the issuing country as a two- or three-letter code, e.g. CN or CHN."),
    "date_of_birth": _("Type the date of birth as YYYY-MM-DD."),
    "expiry": _("Type the expiry date as YYYY-MM-DD."),
    "expired": _("This passport has expired. Show it to a customs officer."),
}
# A typed zone whose check digit fails, by the field it protects (whole
# sentences: a field name put into a sentence does not translate well).
ZONE_FIELDS = {
    "mrz_document_number": _("The passport lines do not check out: look again at the passport number "
                             "and type them again."),
    "mrz_birth_date": _("The passport lines do not check out: look again at the date of birth "
                        "and type them again."),
    "mrz_expiry_date": _("The passport lines do not check out: look again at the expiry date "
                         "and type them again."),
}
ZONE_OTHER = _("These are not the two lines at the bottom of a passport's photo page.")

GATE = {
    gate.NO_EXIT_POINTS: _("No exit points known yet: connect to the internet once."),
    gate.NO_FIX: _("Waiting for your location. Turn on location."),
    gate.MOCK_LOCATION: _("Your phone reports a simulated location. Use the kiosk or the customs desk."),
    gate.POOR_ACCURACY: _("Your location is not precise enough yet. Go nearer a window or wait a moment."),
    gate.OUTSIDE_ZONE: _("You are not in a validation zone. Validate at the airport or port, after security."),
    gate.NO_BEACON: _("Walk towards the customs desk: the app must see its sensor post. Turn on Bluetooth."),
    gate.OPEN: _("You are in the validation zone of {place}."),
}

VERDICT_TITLES = {
    "validated": _("Export validated"),
    "check_required": _("Go to the customs desk"),
    "refused": _("Not validated"),
}

STATUSES = {
    "issued": _("Open: validate before you leave the EU"),
    "check_required": _("Waiting for a check at the customs desk"),
    "validated": _("Validated: the refund is on its way"),
    "partially_validated": _("Partly validated: the refund is on its way"),
    "refunded": _("Refund paid"),
    "rejected": _("Not validated by customs"),
    "cancelled": _("Cancelled by the shop"),
    "expired": _("Expired: the export deadline passed"),
}

TRIP_WARNINGS = {
    trip.NOT_LAST_EXIT: _("This is not your last stop in the EU: validate where you leave the EU."),
    trip.NOT_TODAY: _("This departure is not today. Validate on the day you leave."),
    trip.TRANSFER: _("Transfer passengers validate at the airport where they leave the EU."),
}

# Why the API refused a form (its reason_code); the same words as the kiosk's.
REFUSAL_REASONS = {
    "form_cancelled": _("This form was cancelled by the shop."),
    "deadline_passed": _("The export deadline for this form passed on {date}."),
    "rejected_at_check": _("Customs refused the export of these goods at a physical check."),
    "validated_elsewhere": _("This form was already validated at another exit point."),
    "form_not_found": _("This form is not known. Ask the shop or your refund company."),
    # The trip or the place, as the API judged them (the app warns before
    # sending, but the API's clock and data decide).
    "not_last_eu_exit": TRIP_WARNINGS[trip.NOT_LAST_EXIT],
    "not_departing_today": TRIP_WARNINGS[trip.NOT_TODAY],
    "wrong_exit_point": _("Your trip does not leave from here: validate where your flight or ferry leaves."),
    "sailing_departed": _("This sailing has already left: choose the sailing you are taking."),
    "too_early": _("It is too early to validate for this sailing: try again nearer the departure."),
    "not_at_exit_point": GATE[gate.OUTSIDE_ZONE],
}

OFFLINE = _("No connection. Nothing was validated: use a kiosk or the customs desk.")
BEFORE_CHECK_IN = _("Validate your tax-free forms before you check in your luggage.")


class Wording:
    def __init__(self, language: str):
        self.language = language if language in LANGUAGES else "en"
        self.rtl = LANGUAGES[self.language].rtl

    def __call__(self, message: str, **fields) -> str:
        if self.rtl:
            fields = {k: isolate(v) for k, v in fields.items()}
        return translate(self.language, message, **fields)

    def money(self, cents: int) -> str:
        return format_eur(cents)

    def form_line(self, form) -> str:
        return self(_("{shop}, {date}: refund {refund} of {total}"), shop=form.shop,
                    date=form.purchase_date.isoformat(), refund=self.money(form.refund_cents),
                    total=self.money(form.total_cents))

    def deadline(self, form) -> str:
        return self(_("Leave the EU with the goods by {date}."), date=form.export_deadline.isoformat())

    def trip(self, trip) -> str:
        text = (_("Flight from {origin} to {destination} on {day}") if trip.kind == "flight"
                else _("Ferry from {origin} to {destination} on {day}"))
        return self(text, origin=trip.departs_from, destination=trip.destination, day=trip.day.isoformat())

    def sailing(self, port, sailing) -> str:
        """A ferry sailing as a button says it: "Hook of Holland ... to Harwich (United Kingdom), 22:00"."""
        return self(_("{port} to {destination}, {time}"), port=port.name, destination=trip.destination(sailing),
                    time=sailing.departs_at.astimezone(trip.EXIT_TIMEZONE).strftime("%H:%M"))

    def refusal(self, verdict) -> str:
        """Why a form was not validated, in the traveller's language when the reason is known."""
        if verdict.reason_code in REFUSAL_REASONS:
            deadline = verdict.export_deadline.isoformat() if verdict.export_deadline else "?"
            return self(REFUSAL_REASONS[verdict.reason_code], date=deadline)
        return verdict.message or self(_("This form cannot be validated."))

    def status(self, code: str) -> str:
        return self(STATUSES.get(code, code))

    def gate(self, g) -> str:
        text = GATE[g.reason]
        return self(text, place=g.exit_point.name) if g.exit_point is not None and "{place}" in text else self(text)

    def entry_error(self, field: str) -> str:
        if field in ENTRY_ERRORS:
            return self(ENTRY_ERRORS[field])
        if field in ZONE_FIELDS:
            return self(ZONE_FIELDS[field])
        return self(ZONE_OTHER)
