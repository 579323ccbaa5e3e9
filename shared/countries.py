"""Countries: which codes exist, and which ones are inside the EU.

Codes are ISO 3166-1 alpha-2 in upper case. Greece is ``GR`` here, not the
``EL`` the EU uses in VAT numbers, because passports and residence addresses
use ISO codes.
"""
from __future__ import annotations

import pycountry

# The EU27 since 1 February 2020 (GB left). Kept as data: a change of
# membership is an edit here, not a code change elsewhere.
EU_MEMBER_STATES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR",
        "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO",
        "SE", "SI", "SK",
    }
)


def is_country(code: object) -> bool:
    """True if ``code`` is an assigned ISO 3166-1 alpha-2 code in upper case."""
    # pycountry looks codes up case-insensitively; we accept upper case only so
    # a stored code has exactly one spelling.
    if not isinstance(code, str) or len(code) != 2 or not code.isascii():
        return False
    if not code.isalpha() or not code.isupper():
        return False
    return pycountry.countries.get(alpha_2=code) is not None


def is_eu(code: object) -> bool:
    """True if ``code`` is one of the EU27 member states."""
    return isinstance(code, str) and code in EU_MEMBER_STATES


def country_name(code: str) -> str:
    """The English short name of a country, e.g. ``"CH"`` -> ``"Switzerland"``.

    Raises ``ValueError`` for anything that is not a valid upper-case code.
    """
    if not is_country(code):
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {code!r}")
    return pycountry.countries.get(alpha_2=code).name
