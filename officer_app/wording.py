"""What the officer reads, in Dutch or English: labels for the codes the
API uses, times, dates and amounts.

Every text is a gettext message id in English, marked with ``_()`` here
and in the other modules, or ``app.tr("...")`` in the kv files; the Dutch
is in ``officer_app/i18n/nl.po`` (read with :mod:`shared.i18n`).

Screens do not hold finished strings but :class:`Phrase` objects: the
English text (a ``str``, so code and tests read it as before) that also
remembers its message id and fields. The kv files show them with
``app.say(text, app.language)``, so switching the language re-renders
every visible text at once, dates and amounts included. Plain strings are
data (names, form ids, an API's detail) and are shown as they are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

from shared import countries
from shared.i18n import translate
from shared.money import format_eur

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# Dates and times are shown in the member state's time zone.
LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")
CATALOGS = Path(__file__).parent / "i18n"
# The handheld's languages, in the order the switch shows them.
LANGUAGES = ("nl", "en")


def _(message: str) -> str:
    """Marks a message id for the catalog; translated where it is shown."""
    return message


@dataclass(frozen=True)
class Amount:
    """Euro cents, written the reader's way: ``EUR 1,234.56`` or ``€ 1.234,56``."""

    cents: int


@dataclass(frozen=True)
class Clock:
    """A moment as ``HH:MM:SS`` in the member state's zone."""

    moment: datetime


@dataclass(frozen=True)
class Code:
    """A code of the API as the confirmation shows what is sent: the code
    itself in English (the API's words), its name in another language."""

    code: str
    name: str


class Phrase(str):
    """A text to show in the officer's language: its English (the ``str``
    value) plus the message id and fields to render it in another.

    Fields may be phrases themselves, :class:`Amount`, :class:`Clock`,
    dates (``28 Nov 2026``) or datetimes (local ``HH:MM``); anything else
    is shown as it is."""

    message: str
    fields: dict

    def __new__(cls, message: str, **fields):
        self = super().__new__(cls, _render(message, fields, "en"))
        self.message = message
        self.fields = fields
        return self

    def in_language(self, language: str) -> str:
        return _render(self.message, self.fields, language)

    @classmethod
    def join(cls, separator: str, parts) -> Phrase:
        """``parts`` (phrases or data) joined, each rendered in the reader's language."""
        parts = list(parts)
        template = separator.replace("{", "{{").replace("}", "}}").join(f"{{p{i}}}" for i in range(len(parts)))
        return cls(template, **{f"p{i}": part for i, part in enumerate(parts)})


def _render(message: str, fields: dict, language: str) -> str:
    if not message:  # gettext's "" is the catalog's header, not an empty text
        return ""
    values = {name: _field(value, language) for name, value in fields.items()}
    return translate(language, message, catalogs=CATALOGS, **values) if values else \
        translate(language, message, catalogs=CATALOGS)


def _field(value, language: str) -> str:
    if isinstance(value, Phrase):
        return value.in_language(language)
    if isinstance(value, Amount):
        return _money_text(value.cents, language)
    if isinstance(value, Code):
        return value.code if language == "en" else say(value.name, language)
    if isinstance(value, CountryCode):
        return value.named(language)
    if isinstance(value, Clock):
        return value.moment.astimezone(LOCAL_ZONE).strftime("%H:%M:%S")
    if isinstance(value, datetime):
        return _local_time_text(value, language)
    if isinstance(value, date):
        return _day_text(value, language)
    return str(value)


def say(text: str | None, language: str) -> str:
    """What a screen shows for ``text``: a phrase in ``language``, data as it is."""
    if isinstance(text, Phrase):
        return text.in_language(language)
    return text or ""


def tr(message: str, language: str, **fields) -> str:
    """``message`` (a message id) in ``language``, ``{fields}`` filled in."""
    return Phrase(message, **fields).in_language(language)


# --- codes the API uses ---------------------------------------------------------------

RULES = {
    "high_value": _("High value"),
    "watched_category": _("Watched goods"),
    "random_sample": _("Random check"),
    "retailer_watchlist": _("Retailer on watchlist"),
    "traveller_watchlist": _("Traveller on watchlist"),
    "frequent_traveller": _("Many forms in a few days"),
    "eu_passport_holder": _("EU passport holder"),
    "app_no_fresh_beacon": _("App: no current sensor post token"),
    "app_beacon_invalid": _("App: forged or foreign sensor post token"),
    "app_outside_zone": _("App: outside the validation zone"),
    "app_gps_accuracy": _("App: GPS not accurate enough"),
    "app_gps_stale": _("App: GPS position too old"),
    "app_mock_location": _("App: simulated location"),
    "app_first_use": _("App: first use of this phone"),
    "app_many_passports": _("App: several passports on one phone"),
    "desk_walk_in": _("Came straight to the desk"),
}

OUTCOMES = {
    "validated": _("Validated"),
    "partially_validated": _("Partially validated"),
    "rejected": _("Rejected"),
}
# The same, inside a sentence ("NL7KQ3X9PD: validated, recorded.").
OUTCOMES_IN_SENTENCE = {
    "validated": _("validated"),
    "partially_validated": _("partially validated"),
    "rejected": _("rejected"),
}

# In the order the officer sees them; "other" needs a note.
REASONS = {
    "goods_not_presented": _("Goods not presented"),
    "goods_used": _("Goods used"),
    "eu_residence": _("Residence in the EU"),
    "deadline_passed": _("Deadline passed"),
    "passport_mismatch": _("Passport does not match"),
    "other": _("Other (note required)"),
}
# A reason as a recorded decision names it (no instruction in it).
REASONS_RECORDED = {**REASONS, "other": _("Other")}

STATUSES = {
    "issued": _("Issued, not yet scanned at an exit point"),
    "check_required": _("Waiting for a check"),
    "validated": _("Validated"),
    "partially_validated": _("Partially validated"),
    "rejected": _("Rejected"),
    "cancelled": _("Cancelled by the retailer"),
    "expired": _("Expired: the export deadline passed"),
    "refunded": _("Validated and refunded"),
}

# Goods categories of shared.rules.CATEGORIES.
CATEGORIES = {
    "clothing": _("Clothing"),
    "shoes": _("Shoes"),
    "electronics": _("Electronics"),
    "watches": _("Watches"),
    "jewellery": _("Jewellery"),
    "cosmetics": _("Cosmetics"),
    "food": _("Food"),
    "books": _("Books"),
    "toys": _("Toys"),
    "leather_goods": _("Leather goods"),
    "household": _("Household goods"),
    "other": _("Other goods"),
    "services": _("Services"),
    "tobacco": _("Tobacco"),
    "medicines": _("Medicines"),
    "weapons": _("Weapons"),
    "cultural_goods": _("Cultural goods"),
    "vehicles": _("Vehicles"),
}

# What the handheld says itself, by key (the desk pass, a check opened here).
TEXTS = {
    "desk_pass_expired": _("This desk pass has expired: ask the traveller to show it again in the app."),
    "invalid_desk_pass": _("This is not a desk pass of the tax-free system: possibly forged."),
    "desk_pass_no_open_forms": _("The traveller has no forms to check or validate."),
    "choose_exit_point": _("Choose your desk's exit point first."),
    "not_on_duty": _("You are no longer on duty at a desk (your shift ended?): log out and choose your "
                     "exit point again."),
    "open_check": _("Open a check at this desk"),
    "check_opened": _("{form_id}: check opened at this desk."),
    "found_by_desk_pass": _("Found by the traveller's app (desk pass)."),
}

# Problems of the API the handheld can meet, by their code: said in the
# officer's language. Any other problem is shown with the API's detail.
PROBLEMS = {
    "desk_pass_expired": TEXTS["desk_pass_expired"],
    "invalid_desk_pass": TEXTS["invalid_desk_pass"],
    "not_on_duty": TEXTS["not_on_duty"],
    "not_on_duty_here": _("Form {form_id} waits at the desk of another exit point: only an officer on "
                          "duty there can decide it."),
    "deadline_passed": _("The export deadline of form {form_id} ended with {date}: its export can no longer "
                         "be validated, only rejected."),
    "already_decided": _("Form {form_id} is no longer waiting for a decision."),
    "form_not_open": _("Form {form_id} is no longer open (validated, cancelled or past its deadline): "
                       "no check can be opened for it."),
    "invalid_credentials": _("Wrong username or password."),
    "too_many_requests": _("Too many attempts. Wait a minute, then try again."),
    "session_expired": _("Your session ended: log in again."),
    "token_revoked": _("Your session ended: log in again."),
}


def problem(code: str | None, detail: str | None, **fields) -> str:
    """An API problem for the officer: the catalog's words when the handheld
    knows the ``code`` (a :class:`Phrase`), else the API's ``detail``.
    ``fields`` fill the known texts (``form_id``); a ``{date}`` is the ISO
    date the API's detail names (the export deadline it judged by)."""
    if code not in PROBLEMS:
        return detail or code or ""
    message = PROBLEMS[code]
    if "{date}" in message and "date" not in fields:
        named = ISO_DATE.search(detail or "")
        if named is None:
            return detail or code
        fields["date"] = date.fromisoformat(named.group(0))
    return Phrase(message, **{"form_id": "", **fields})


def _named(labels: dict[str, str], code: str | None) -> str:
    if not code:
        return ""
    if code in labels:
        return Phrase(labels[code])
    return code.replace("_", " ").capitalize()


def rule(code: str) -> str:
    return _named(RULES, code)


def outcome(code: str | None) -> str:
    return _named(OUTCOMES, code)


def outcome_in_sentence(code: str | None) -> str:
    return _named(OUTCOMES_IN_SENTENCE, code)


def reason(code: str | None) -> str:
    return _named(REASONS_RECORDED, code)


def status(code: str) -> str:
    return _named(STATUSES, code)


def category(code: str) -> str:
    return _named(CATEGORIES, code)


# --- amounts, countries, times -------------------------------------------------------------

def _money_text(cents: int, language: str) -> str:
    if language == "en":
        return format_eur(cents)
    # Babel takes a Decimal-like amount; cents / 100 as a string stays exact.
    sign, whole = ("-" if cents < 0 else ""), abs(cents)
    return format_currency(f"{sign}{whole // 100}.{whole % 100:02d}", "EUR", locale=_locale(language))


def money(cents: int | None) -> str:
    return Phrase("{amount}", amount=Amount(cents)) if cents is not None else ""


def _locale(language: str) -> str:
    return {"nl": "nl_NL"}.get(language, language)


def country(code: str | None) -> str:
    """``"CN"`` -> ``"China (CN)"`` (``"China (CN)"`` in Dutch too, ``"Verenigde Staten (US)"``);
    unknown codes as given."""
    if not code:
        return ""
    try:
        countries.country_name(code)
    except ValueError:
        return code
    return Phrase("{country}", country=CountryCode(code))


@dataclass(frozen=True)
class CountryCode:
    """An ISO 3166-1 code, named in the reader's language: ``China (CN)``."""

    code: str

    def named(self, language: str) -> str:
        if language == "en":
            name = countries.country_name(self.code)
        else:
            name = Locale.parse(_locale(language)).territories.get(self.code) or countries.country_name(self.code)
        return f"{name} ({self.code})"


def waiting(delta: timedelta) -> str:
    """How long a traveller has waited: ``"just now"``, ``"7 min"``, ``"1 h 05 min"``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return Phrase(_("just now"))
    if minutes < 60:
        return Phrase(_("{minutes} min"), minutes=minutes)
    return Phrase(_("{hours} h {minutes} min"), hours=minutes // 60, minutes=f"{minutes % 60:02d}")


def _local_time_text(moment: datetime, language: str) -> str:
    local = moment.astimezone(LOCAL_ZONE)
    if local.date() == datetime.now(LOCAL_ZONE).date():
        return local.strftime("%H:%M")
    if language == "en":
        return local.strftime("%d %b %H:%M")
    return format_datetime(local, "d MMM HH:mm", locale=_locale(language))


def local_time(moment: datetime | str | None) -> str:
    """``HH:MM`` in the member state's zone (``"dd Mon HH:MM"`` if not today)."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return Phrase("{time}", time=moment)


def clock(moment: datetime) -> str:
    """``HH:MM:SS`` in the member state's zone (when the queue was updated)."""
    return Phrase("{time}", time=Clock(moment))


def officer(actor: str, me: str | None = None) -> str:
    """How the audit trail's actor (``user:7``) is named to an officer. The
    API gives officers no names of other users, so it is the user number."""
    if me is not None and actor == me:
        return Phrase(_("you"))
    if actor.startswith("user:"):
        return Phrase(_("officer no. {number}"), number=actor[5:])
    return actor


def _day_text(value: date, language: str) -> str:
    if language == "en":
        return value.strftime("%d %b %Y").lstrip("0")
    return format_date(value, "d MMM y", locale=_locale(language))


def day(value: date | str | None) -> str:
    """``2026-11-28`` -> ``"28 Nov 2026"`` (``"28 nov 2026"`` in Dutch)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return Phrase("{day}", day=value)


def plural(count: int, one: str, many: str) -> str:
    """``one`` or ``many`` (message ids with ``{count}``) for ``count``;
    Dutch and English both use the singular for exactly one."""
    return Phrase(one if count == 1 else many, count=count)
