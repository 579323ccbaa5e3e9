"""A passport given to the app: typed field by field, typed as the two
lines of its machine-readable zone, or read by the camera. A zone is taken
only when every check digit holds (``shared.mrz``)."""
from __future__ import annotations

import re
from datetime import date

from shared import mrz
from shared.countries import country_name

from .wallet import Passport

NUMBER = re.compile(r"[A-Z0-9]{5,17}")


class EntryError(ValueError):
    """What is wrong with what was typed; ``field`` names it for the screen."""

    def __init__(self, field: str, message: str = ""):
        super().__init__(message or field)
        self.field = field


def _country(text: str) -> str:
    code = text.strip().upper()
    if len(code) == 3:
        code = mrz.country_of(code) or ""
    try:
        country_name(code)
    except ValueError:
        raise EntryError("country") from None
    return code


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise EntryError(field) from None


def from_fields(number: str, country: str, date_of_birth: str, expiry: str, today: date) -> Passport:
    """A passport typed field by field (dates as YYYY-MM-DD)."""
    number = number.strip().upper().replace(" ", "")
    if not NUMBER.fullmatch(number):
        raise EntryError("number")
    code = _country(country)
    born = _day(date_of_birth, "date_of_birth")
    if born >= today:
        raise EntryError("date_of_birth")
    ends = _day(expiry, "expiry")
    if ends < today:
        raise EntryError("expired")
    return Passport(number, code, born, ends)


def from_zone(text: str, today: date) -> Passport:
    """A passport from its two zone lines; EntryError names the field whose
    check digit does not hold (``mrz_document_number``, ``mrz_birth_date`` ...)."""
    try:
        read = mrz.parse_td3(text, today=today)
    except mrz.MrzError as exc:
        raise EntryError(f"mrz_{exc.field}", str(exc)) from None
    if read.issuing_country is None:
        raise EntryError("country")
    if read.expired:
        raise EntryError("expired")
    return Passport(read.document_number, read.issuing_country, read.birth_date, read.expiry_date,
                    read.full_name)
