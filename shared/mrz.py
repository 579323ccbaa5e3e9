"""The passport's machine-readable zone (ICAO Doc 9303 part 4, TD3).

A TD3 zone is two lines of 44 characters. A document reader in keyboard-wedge
mode "types" it into the kiosk, usually as two lines separated by CR and/or
LF, sometimes as one 88-character string; both are accepted.

Line 1: ``P`` + document subtype, issuing state (3), names (39: primary
identifier ``<<`` secondary identifier, ``<`` between words).
Line 2: document number (9) + check, nationality (3), date of birth (YYMMDD)
+ check, sex, date of expiry + check, optional data (14) + check, composite
check over the document number, birth, expiry and optional data fields.

Check digits (weights 7, 3, 1; ``<`` is 0, A-Z are 10-35) catch a misread
character in the document number, the dates and the optional data. They do
not cover the names, the issuing state, the nationality or the sex: those are
checked for shape only (a misread there stays undetected by design of the
format, not of this parser).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pycountry

LINE_LENGTH = 44
_WEIGHTS = (7, 3, 1)
_MRZ_CHARS = re.compile(r"[A-Z0-9<]+")

# ICAO codes that are not ISO 3166-1 alpha-3 codes, or not a country at all.
# None: a valid code that names no ISO country (organisations, stateless,
# the specimen's Utopia).
_ICAO_SPECIAL: dict[str, str | None] = {
    "D": "DE",  # Germany writes D<< instead of DEU
    "GBD": "GB",  # British Overseas Territories citizen
    "GBN": "GB",  # British National (Overseas)
    "GBO": "GB",  # British Overseas citizen
    "GBP": "GB",  # British protected person
    "GBS": "GB",  # British subject
    "RKS": "XK",  # Kosovo (user-assigned ISO code, used by the EU)
    "EUE": None,  # European Union laissez-passer
    "UNO": None, "UNA": None, "UNK": None,  # United Nations
    "XXA": None, "XXB": None, "XXC": None, "XXX": None,  # stateless, refugee, unspecified
    "UTO": None,  # Utopia, the ICAO specimen state
}


class MrzError(ValueError):
    """Input that is not a valid TD3 zone; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Passport:
    """What a verified TD3 zone says."""

    document_type: str  # "P" plus the subtype character, e.g. "P<"
    document_number: str
    issuing_state: str  # the ICAO code as printed, e.g. "UTO", "D"
    issuing_country: str | None  # ISO 3166-1 alpha-2, None if the code names no country
    nationality_code: str
    nationality: str | None  # ISO 3166-1 alpha-2, None if the code names no country
    surname: str
    given_names: str
    birth_date: date
    sex: str  # "M", "F" or "X" (unspecified)
    expiry_date: date
    optional_data: str
    expired: bool

    @property
    def full_name(self) -> str:
        return f"{self.given_names} {self.surname}".strip()


def check_digit(field: str) -> int:
    """The ICAO 9303 check digit of ``field``."""
    total = 0
    for i, ch in enumerate(field):
        if ch.isdigit():
            value = int(ch)
        elif "A" <= ch <= "Z":
            value = ord(ch) - ord("A") + 10
        elif ch == "<":
            value = 0
        else:
            raise MrzError("characters", f"{ch!r} is not an MRZ character")
        total += value * _WEIGHTS[i % 3]
    return total % 10


def country_of(code: str) -> str | None:
    """ISO alpha-2 for an ICAO 3-letter code (fillers stripped), None if the
    code names no ISO country (UTO, XXA, UNO ...)."""
    code = code.replace("<", "")
    if code in _ICAO_SPECIAL:
        return _ICAO_SPECIAL[code]
    if len(code) != 3 or not code.isalpha():
        return None
    country = pycountry.countries.get(alpha_3=code)
    return country.alpha_2 if country is not None else None


def split_lines(text: str) -> tuple[str, str]:
    """The two 44-character lines of a typed zone, however it was typed.

    Accepts lines separated by CR, LF or CRLF, one 88-character string,
    surrounding whitespace, and lower case (some readers send it with caps
    lock off).
    """
    lines = [line.strip() for line in re.split(r"[\r\n]+", (text or "").strip()) if line.strip()]
    if len(lines) == 1 and len(lines[0]) == 2 * LINE_LENGTH:
        lines = [lines[0][:LINE_LENGTH], lines[0][LINE_LENGTH:]]
    if len(lines) != 2:
        raise MrzError("layout", "a passport zone has two lines of 44 characters")
    lines = [line.upper() for line in lines]
    for line in lines:
        if len(line) != LINE_LENGTH:
            raise MrzError("layout", f"a passport zone line has 44 characters, not {len(line)}")
        if not _MRZ_CHARS.fullmatch(line):
            raise MrzError("characters", "only A-Z, 0-9 and < may appear in a passport zone")
    return lines[0], lines[1]


def looks_like_mrz(text: str) -> bool:
    """True if ``text`` has the shape of a TD3 zone (check digits not verified),
    so typed input can be routed to the passport parser."""
    try:
        line1, _ = split_lines(text)
    except MrzError:
        return False
    return line1.startswith("P")


def _verify(field: str, digit: str, name: str, *, blank_ok: bool = False) -> None:
    if blank_ok and digit == "<" and set(field) <= {"<"}:
        return
    if not digit.isdigit() or check_digit(field) != int(digit):
        raise MrzError(name, f"the check digit of the {name.replace('_', ' ')} does not match")


def _date(yymmdd: str, name: str, *, past: bool, today: date) -> date:
    if not yymmdd.isdigit():
        raise MrzError(name, f"the {name.replace('_', ' ')} is not a date")
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    if past:
        # A birth date is never in the future: 25 read in 2026 is 2025.
        century = 2000 if 2000 + yy <= today.year else 1900
    else:
        # An expiry is at most ten years ahead (and expired ones are read too).
        century = 2000 if 2000 + yy <= today.year + 50 else 1900
    try:
        return date(century + yy, mm, dd)
    except ValueError:
        raise MrzError(name, f"the {name.replace('_', ' ')} is not a date") from None


def _names(field: str) -> tuple[str, str]:
    primary, _, secondary = field.partition("<<")
    clean = lambda part: " ".join(w for w in part.split("<") if w)  # noqa: E731
    return clean(primary), clean(secondary)


def _document_number(line2: str) -> tuple[str, str]:
    """Document number and optional data. A number longer than 9 characters
    puts ``<`` in the check position and continues in the optional data,
    followed by its check digit (Doc 9303 part 4, note j)."""
    number, check, optional = line2[0:9], line2[9], line2[28:42]
    if check != "<":
        _verify(number, check, "document_number")
        return number.rstrip("<"), optional
    rest, _, tail = optional.partition("<")
    if len(rest) < 2:
        raise MrzError("document_number", "the check digit of the document number does not match")
    full, digit = number + rest[:-1], rest[-1]
    _verify(full, digit, "document_number")
    return full, tail.lstrip("<")


def parse_td3(text: str, today: date | None = None) -> Passport:
    """Parse and verify a TD3 zone; raise MrzError naming the first bad field.

    ``expired`` is judged against ``today`` (default: the local date).
    """
    today = today or date.today()
    line1, line2 = split_lines(text)
    if line1[0] != "P":
        raise MrzError("document_type", "not a passport (TD3 zones start with P)")
    issuing_state = line1[2:5].rstrip("<")
    if not issuing_state.isalpha():
        raise MrzError("issuing_state", "the issuing state is not a country code")
    surname, given_names = _names(line1[5:])
    if not surname:
        raise MrzError("names", "the passport zone has no surname")

    number, optional = _document_number(line2)
    nationality = line2[10:13].rstrip("<")
    if not nationality.isalpha():
        raise MrzError("nationality", "the nationality is not a country code")
    _verify(line2[13:19], line2[19], "birth_date")
    sex = line2[20]
    if sex not in "MF<X":
        raise MrzError("sex", "the sex is not M, F or <")
    _verify(line2[21:27], line2[27], "expiry_date")
    _verify(line2[28:42], line2[42], "optional_data", blank_ok=True)
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    _verify(composite, line2[43], "composite")

    birth = _date(line2[13:19], "birth_date", past=True, today=today)
    expiry = _date(line2[21:27], "expiry_date", past=False, today=today)
    return Passport(
        document_type=line1[0:2],
        document_number=number,
        issuing_state=issuing_state,
        issuing_country=country_of(issuing_state),
        nationality_code=nationality,
        nationality=country_of(nationality),
        surname=surname,
        given_names=given_names,
        birth_date=birth,
        sex="X" if sex == "<" else sex,
        expiry_date=expiry,
        optional_data=optional.rstrip("<"),
        # A passport is valid through its expiry date.
        expired=expiry < today,
    )
