"""What the officer reads: labels for codes the API uses, times and amounts.

The desk works in English (the customs service's working language at the
exit point); every label is here so a translation is one catalogue away.
What the traveller's app brought to the desk is in English and Dutch
(``text``, ``rule``; the handheld's ``language`` setting).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared import countries
from shared.money import format_eur

# Dates and times are shown in the member state's time zone.
LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")

RULES = {
    "high_value": "High value",
    "watched_category": "Watched goods",
    "random_sample": "Random check",
    "retailer_watchlist": "Retailer on watchlist",
    "traveller_watchlist": "Traveller on watchlist",
    "frequent_traveller": "Many forms in a few days",
    "eu_passport_holder": "EU passport holder",
    "app_no_fresh_beacon": "App: no current sensor post token",
    "app_beacon_invalid": "App: forged or foreign sensor post token",
    "app_outside_zone": "App: outside the validation zone",
    "app_gps_accuracy": "App: GPS not accurate enough",
    "app_gps_stale": "App: GPS position too old",
    "app_mock_location": "App: simulated location",
    "app_first_use": "App: first use of this phone",
    "app_many_passports": "App: several passports on one phone",
    "desk_walk_in": "Came straight to the desk",
}

# Dutch, for the labels and texts the traveller's app brought to the desk.
RULES_NL = {
    "app_no_fresh_beacon": "App: geen actueel token van een sensorpaal",
    "app_beacon_invalid": "App: vervalst of vreemd token van een sensorpaal",
    "app_outside_zone": "App: buiten de validatiezone",
    "app_gps_accuracy": "App: gps niet nauwkeurig genoeg",
    "app_gps_stale": "App: gps-positie te oud",
    "app_mock_location": "App: gesimuleerde locatie",
    "app_first_use": "App: eerste gebruik van deze telefoon",
    "app_many_passports": "App: meerdere paspoorten op één telefoon",
    "desk_walk_in": "Rechtstreeks naar de balie",
}

TEXTS = {
    "en": {
        "desk_pass_expired": "This desk pass has expired: ask the traveller to show it again in the app.",
        "invalid_desk_pass": "This is not a desk pass of the tax-free system: possibly forged.",
        "desk_pass_no_open_forms": "The traveller has no forms to check or validate.",
        "choose_exit_point": "Choose your desk's exit point first.",
        "not_on_duty": "You are no longer on duty at a desk (your shift ended?): log out and choose your "
                       "exit point again.",
        "open_check": "Open a check at this desk",
        "check_opened": "{form_id}: check opened at this desk.",
        "found_by_desk_pass": "Found by the traveller's app (desk pass).",
    },
    "nl": {
        "desk_pass_expired": "Deze baliepas is verlopen: vraag de reiziger hem opnieuw te tonen in de app.",
        "invalid_desk_pass": "Dit is geen baliepas van het tax-free-systeem: mogelijk vervalst.",
        "desk_pass_no_open_forms": "De reiziger heeft geen formulieren om te controleren of te valideren.",
        "choose_exit_point": "Kies eerst het uitgangspunt van uw balie.",
        "not_on_duty": "U bent niet meer in dienst aan een balie (dienst voorbij?): log uit en kies opnieuw "
                       "uw uitgangspunt.",
        "open_check": "Controle openen aan deze balie",
        "check_opened": "{form_id}: controle geopend aan deze balie.",
        "found_by_desk_pass": "Gevonden via de app van de reiziger (baliepas).",
    },
}


def text(key: str, language: str = "en", **values) -> str:
    """A text in the handheld's language (English when it has none)."""
    return TEXTS.get(language, TEXTS["en"]).get(key, TEXTS["en"][key]).format(**values)

OUTCOMES = {
    "validated": "Validated",
    "partially_validated": "Partially validated",
    "rejected": "Rejected",
}

# In the order the officer sees them; "other" needs a note.
REASONS = {
    "goods_not_presented": "Goods not presented",
    "goods_used": "Goods used",
    "eu_residence": "Residence in the EU",
    "deadline_passed": "Deadline passed",
    "passport_mismatch": "Passport does not match",
    "other": "Other (note required)",
}

STATUSES = {
    "issued": "Issued, not yet scanned at an exit point",
    "check_required": "Waiting for a check",
    "validated": "Validated",
    "partially_validated": "Partially validated",
    "rejected": "Rejected",
    "cancelled": "Cancelled by the retailer",
    "expired": "Expired: the export deadline passed",
    "refunded": "Validated and refunded",
}

CATEGORIES = {
    "leather_goods": "Leather goods",
}


def rule(code: str, language: str = "en") -> str:
    if language == "nl" and code in RULES_NL:
        return RULES_NL[code]
    return RULES.get(code, code.replace("_", " ").capitalize())


def outcome(code: str | None) -> str:
    return OUTCOMES.get(code or "", (code or "").replace("_", " ").capitalize())


def reason(code: str | None) -> str:
    if not code:
        return ""
    return REASONS.get(code, code.replace("_", " ").capitalize()).replace(" (note required)", "")


def status(code: str) -> str:
    return STATUSES.get(code, code.replace("_", " ").capitalize())


def category(code: str) -> str:
    return CATEGORIES.get(code, code.replace("_", " ").capitalize())


def money(cents: int | None) -> str:
    return format_eur(cents) if cents is not None else ""


def country(code: str | None) -> str:
    """``"CN"`` -> ``"China (CN)"``; unknown codes as given."""
    if not code:
        return ""
    try:
        return f"{countries.country_name(code)} ({code})"
    except ValueError:
        return code


def waiting(delta: timedelta) -> str:
    """How long a traveller has waited: ``"just now"``, ``"7 min"``, ``"1 h 05 min"``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def local_time(moment: datetime | str | None) -> str:
    """``HH:MM`` in the member state's zone (``"dd Mon HH:MM"`` if not today)."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(LOCAL_ZONE)
    if local.date() == datetime.now(LOCAL_ZONE).date():
        return local.strftime("%H:%M")
    return local.strftime("%d %b %H:%M")


def clock(moment: datetime) -> str:
    """``HH:MM:SS`` in the member state's zone (when the queue was updated)."""
    return moment.astimezone(LOCAL_ZONE).strftime("%H:%M:%S")


def officer(actor: str, me: str | None = None) -> str:
    """How the audit trail's actor (``user:7``) is named to an officer. The
    API gives officers no names of other users, so it is the user number."""
    if me is not None and actor == me:
        return "you"
    if actor.startswith("user:"):
        return f"officer no. {actor[5:]}"
    return actor


def day(value: date | str | None) -> str:
    """``2026-11-28`` -> ``"28 Nov 2026"``."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return value.strftime("%d %b %Y").lstrip("0")


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"
