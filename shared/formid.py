"""Form ids: short, human-typeable, with a check symbol.

An id is a two-letter country prefix, seven random symbols and one check
symbol, e.g. ``NL7K3QW9XD``. Symbols come from Crockford's base32 alphabet
(no I, L, O or U), so a misread O or I/L can be corrected on input.

The check symbol is Luhn mod N (N = 32) over the body (the seven random
symbols). The prefix is left out on purpose: country codes use letters that
are not in the alphabet (the L of NL, the I of IT); the prefix is checked
against the list of country codes instead.

Luhn mod N catches every single-symbol error and every adjacent
transposition except one: swapping ``0`` and ``Z`` (values 0 and 31, the
analogue of 09 <-> 90 in decimal Luhn). New ids therefore never put a ``0``
next to a ``Z``, so no transposition of an issued id goes unnoticed.
"""
from __future__ import annotations

import secrets

from shared.countries import is_country

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 7
ID_LENGTH = 2 + BODY_LENGTH + 1

_N = len(ALPHABET)
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Crockford's decoding rules for symbols people confuse.
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# The one adjacent transposition Luhn mod 32 cannot see (see module docstring).
_BLIND_PAIRS = ("0Z", "Z0")


def luhn_check_symbol(body: str) -> str:
    """The Luhn mod 32 check symbol for ``body`` (symbols of ``ALPHABET``)."""
    total = 0
    # Doubling starts at the rightmost body symbol, as the check symbol will
    # stand to its right with weight 1.
    for position, symbol in enumerate(reversed(body)):
        addend = _VALUE[symbol] * (2 if position % 2 == 0 else 1)
        total += addend // _N + addend % _N
    return ALPHABET[(_N - total % _N) % _N]


def _luhn_valid(body_and_check: str) -> bool:
    total = 0
    for position, symbol in enumerate(reversed(body_and_check)):
        addend = _VALUE[symbol] * (2 if position % 2 == 1 else 1)
        total += addend // _N + addend % _N
    return total % _N == 0


def new_form_id(country: str = "NL", rng=secrets) -> str:
    """A fresh form id for a form registered in ``country``.

    ``rng`` is anything with ``choice`` (``secrets`` by default; tests pass a
    seeded ``random.Random``).
    """
    if not is_country(country):
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {country!r}")
    while True:
        body = "".join(rng.choice(ALPHABET) for _ in range(BODY_LENGTH))
        symbols = body + luhn_check_symbol(body)
        if not any(pair in symbols for pair in _BLIND_PAIRS):
            return country + symbols


def normalize_form_id(text: str) -> str:
    """A typed id in canonical form: upper case, no spaces or hyphens, and in
    the body O read as 0 and I/L as 1. The prefix letters are kept as typed
    (upper-cased), because NL and IT contain letters the body never uses."""
    compact = "".join(text.split()).replace("-", "").upper()
    return compact[:2] + compact[2:].translate(_LOOKALIKES)


def is_valid_form_id(text: str) -> bool:
    """True if ``text``, once normalised, is a well-formed id with a correct
    check symbol and a country code as prefix."""
    if not isinstance(text, str):
        return False
    candidate = normalize_form_id(text)
    if len(candidate) != ID_LENGTH:
        return False
    prefix, symbols = candidate[:2], candidate[2:]
    if not is_country(prefix):
        return False
    if any(symbol not in _VALUE for symbol in symbols):
        return False
    return _luhn_valid(symbols)
