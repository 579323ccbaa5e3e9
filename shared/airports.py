"""Airports by IATA code, and whether flying there leaves the EU.

Codes and countries come from the maintained ``airportsdata`` package
(ISO 3166-1 alpha-2 countries), membership from ``shared.countries``. The
question is EU membership, not Schengen: Zurich, Geneva and Oslo are outside
the EU (leaving for them is an export); Dublin and Larnaca are inside it
(not an export, although there is a passport check).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import airportsdata

from .countries import EU_MEMBER_STATES


class UnknownAirport(LookupError):
    """An IATA code that no airport in the data has."""


@dataclass(frozen=True)
class Airport:
    iata: str
    name: str
    city: str
    country: str  # ISO 3166-1 alpha-2


@lru_cache(maxsize=1)
def _by_iata() -> dict[str, dict]:
    # About 8,000 airports; loaded once, on first use (about 50 ms).
    return airportsdata.load("IATA")


def airport(iata: str) -> Airport:
    """The airport with IATA code ``iata``; raises UnknownAirport."""
    code = (iata or "").strip().upper()
    row = _by_iata().get(code)
    if row is None:
        raise UnknownAirport(f"no airport has the IATA code {iata!r}")
    return Airport(iata=code, name=row["name"], city=row["city"], country=row["country"])


def is_in_eu(iata: str) -> bool:
    """True if the airport ``iata`` is in an EU member state."""
    return airport(iata).country in EU_MEMBER_STATES


def is_last_eu_exit(destination_airport: str) -> bool:
    """True if a flight to ``destination_airport`` leaves the EU, so the
    airport it departs from is the traveller's last EU exit point and the
    place to validate the export. Raises UnknownAirport for an unknown code.
    """
    return not is_in_eu(destination_airport)
