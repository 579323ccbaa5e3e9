"""Boarding pass bar codes (IATA Resolution 792, BCBP), mandatory items.

A boarding pass bar code (PDF417, Aztec or QR) holds ``M``, the number of
legs, the passenger's name, then per leg a fixed 35-character block (PNR,
from, to, carrier, flight, Julian date, class, seat, sequence, status) and a
2-digit hex size of the leg's variable part (conditional and airline data),
which is skipped here. The first leg's block starts at offset 23 after the
name and the e-ticket flag, so the first 60 characters are the mandatory
part of a one-leg pass.

The kiosk reads it to learn where the traveller flies next: if that is inside
the EU, this airport is not their last EU exit and validating here is wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from .airports import UnknownAirport, airport, is_in_eu, is_last_eu_exit

__all__ = ["BcbpError", "BoardingPass", "Leg", "parse", "looks_like_bcbp",
           "is_last_eu_exit", "UnknownAirport"]

MANDATORY_LENGTH = 60
_LEG_LENGTH = 37  # 35 characters of items + the 2-character variable-size field
_AIRPORT = re.compile(r"[A-Z]{3}")


class BcbpError(ValueError):
    """Text that is not a BCBP boarding pass; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Leg:
    pnr: str
    origin: str  # IATA airport code
    destination: str
    carrier: str
    flight_number: str  # e.g. "0834" or "123A", as printed, without padding
    julian_date: int  # day of the year, 1-366
    compartment: str
    seat: str  # e.g. "1A" (leading zeros dropped)
    sequence: str
    passenger_status: str

    @property
    def flight(self) -> str:
        return f"{self.carrier}{self.flight_number}"

    def flight_date(self, near: date) -> date:
        """The calendar date of the flight: the day of the year given by the
        pass, in the year that puts it closest to ``near`` (a boarding pass
        carries no year)."""
        candidates = []
        for year in (near.year - 1, near.year, near.year + 1):
            start = date(year, 1, 1)
            day = start + timedelta(days=self.julian_date - 1)
            if day.year == year:  # day 366 only in leap years
                candidates.append(day)
        return min(candidates, key=lambda d: abs((d - near).days))


@dataclass(frozen=True)
class BoardingPass:
    passenger_name: str  # "SURNAME/GIVEN" as printed, trailing spaces dropped
    electronic_ticket: bool
    legs: tuple[Leg, ...]

    @property
    def surname(self) -> str:
        return self.passenger_name.partition("/")[0].strip()

    @property
    def given_names(self) -> str:
        return self.passenger_name.partition("/")[2].strip()

    def leg_from(self, origin: str) -> Leg:
        """The leg departing from ``origin`` (this exit point), or the first
        leg if none does."""
        for leg in self.legs:
            if leg.origin == origin.upper():
                return leg
        return self.legs[0]

    def leaves_eu_from(self, origin: str) -> bool:
        """True if the flight from ``origin`` goes outside the EU, i.e. this
        airport is the traveller's last EU exit. Raises UnknownAirport."""
        return is_last_eu_exit(self.leg_from(origin).destination)

    def last_eu_exit(self) -> str | None:
        """The airport, among those on the pass, from which the traveller
        leaves the EU: where to validate. None if no leg leaves the EU or an
        airport is unknown."""
        try:
            for leg in self.legs:
                if is_in_eu(leg.origin) and not is_in_eu(leg.destination):
                    return leg.origin
        except UnknownAirport:
            return None
        return None


def looks_like_bcbp(text: str) -> bool:
    """True if ``text`` has the shape of a BCBP pass (``M``, a leg count, at
    least the 60-character mandatory part), to route scanned input."""
    text = (text or "").strip("\r\n")
    return len(text) >= MANDATORY_LENGTH and text[0] == "M" and text[1] in "123456789"


def _leg(block: str) -> Leg:
    pnr, origin, destination = block[0:7], block[7:10], block[10:13]
    carrier, flight, julian = block[13:16], block[16:21], block[21:24]
    compartment, seat, sequence, status = block[24], block[25:29], block[29:34], block[34]
    for name, code in (("origin", origin), ("destination", destination)):
        if not _AIRPORT.fullmatch(code):
            raise BcbpError(name, f"the {name} is not an airport code: {code!r}")
    julian = julian.strip()
    if not julian.isdigit() or not 1 <= int(julian) <= 366:
        raise BcbpError("julian_date", f"the flight date is not a day of the year: {julian!r}")
    if not flight.strip():
        raise BcbpError("flight_number", "the flight number is missing")
    return Leg(
        pnr=pnr.strip(),
        origin=origin,
        destination=destination,
        carrier=carrier.strip(),
        flight_number=flight.strip(),
        julian_date=int(julian),
        compartment=compartment,
        seat=seat.strip().lstrip("0") or seat.strip(),
        sequence=sequence.strip().lstrip("0") or sequence.strip(),
        passenger_status=status,
    )


def _size(field: str, name: str) -> int:
    try:
        return int(field, 16)
    except ValueError:
        raise BcbpError(name, f"the size of the variable part is not hex: {field!r}") from None


def parse(text: str) -> BoardingPass:
    """Parse a scanned boarding pass; raise BcbpError naming what is wrong.

    Every leg's mandatory items are read; conditional items, airline data and
    the security signature are skipped (their sizes are honoured to find the
    next leg).
    """
    # Scanners in keyboard-wedge mode end with CR/LF; the pass itself ends
    # with spaces that matter for positions, so only line ends are trimmed.
    text = (text or "").strip("\r\n")
    if len(text) < MANDATORY_LENGTH:
        raise BcbpError("layout", f"a boarding pass has at least {MANDATORY_LENGTH} characters")
    if text[0] != "M":
        raise BcbpError("format", "not an IATA BCBP boarding pass (format code M)")
    if not text[1].isdigit() or text[1] == "0":
        raise BcbpError("legs", "the number of legs is not 1-9")
    count = int(text[1])
    name, ticket = text[2:22].rstrip(), text[22]
    if "/" not in name and not name.strip():
        raise BcbpError("name", "the passenger name is missing")

    legs = []
    at = 23
    for index in range(count):
        block = text[at:at + _LEG_LENGTH]
        if len(block) < _LEG_LENGTH:
            raise BcbpError("layout", f"leg {index + 1} is cut short")
        legs.append(_leg(block[:35]))
        at += _LEG_LENGTH + _size(block[35:37], "variable_size")
    return BoardingPass(passenger_name=name, electronic_ticket=ticket == "E", legs=tuple(legs))


def destination_name(iata: str) -> str:
    """``"Paris Charles de Gaulle International Airport (FR)"``-like text
    for messages; the code itself if the airport is unknown."""
    try:
        a = airport(iata)
    except UnknownAirport:
        return iata
    return f"{a.name} ({a.iata}, {a.country})"
