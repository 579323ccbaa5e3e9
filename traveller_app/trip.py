"""The traveller's trip: a scanned boarding pass or a chosen ferry sailing,
and what to warn about (not the last EU exit, not today, a transfer).

Boarding passes are read by :mod:`shared.bcbp`; airports by
:mod:`shared.airports`. Ferry sailings are a short list of the Dutch
routes that leave the EU (to the United Kingdom).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared import bcbp

# Sailings from Dutch ports to outside the EU: (id prefix, port code, port, destination).
FERRY_ROUTES = [
    ("HVH-HAR", "HVH", "Hook of Holland", "Harwich (United Kingdom)"),
    ("RTM-HUL", "RTM", "Rotterdam Europoort", "Hull (United Kingdom)"),
]

# Warnings, one screen treatment each.
NOT_LAST_EXIT = "not_last_exit"  # the next leg lands inside the EU
NOT_TODAY = "not_today"  # the flight or sailing is on another day
TRANSFER = "transfer"  # connecting: validate where the EU is left


@dataclass(frozen=True)
class Trip:
    kind: str  # "flight" or "ferry"
    departs_from: str  # IATA airport or port code
    destination: str  # as shown
    day: date
    warnings: tuple[str, ...] = ()
    validate_at: str | None = None  # where to validate instead, if known
    boarding_pass: str | None = None  # as scanned (sent to the API)
    sailing: str | None = None

    def api_trip(self) -> dict:
        if self.kind == "flight":
            return {"kind": "flight", "boarding_pass": self.boarding_pass}
        return {"kind": "ferry", "sailing": self.sailing}

    def to_json(self) -> dict:
        return {"kind": self.kind, "departs_from": self.departs_from, "destination": self.destination,
                "day": self.day.isoformat(), "warnings": list(self.warnings), "validate_at": self.validate_at,
                "boarding_pass": self.boarding_pass, "sailing": self.sailing}

    @classmethod
    def from_json(cls, data: dict) -> "Trip":
        return cls(kind=data["kind"], departs_from=data["departs_from"], destination=data["destination"],
                   day=date.fromisoformat(data["day"]), warnings=tuple(data.get("warnings", ())),
                   validate_at=data.get("validate_at"), boarding_pass=data.get("boarding_pass"),
                   sailing=data.get("sailing"))


class TripError(ValueError):
    """A boarding pass that cannot be read, or an airport nobody knows."""


def from_boarding_pass(text: str, today: date, here: str | None = None) -> Trip:
    """The trip a scanned boarding pass describes, seen from ``here`` (the
    exit point's airport code; default: the first leg's origin)."""
    try:
        boarding = bcbp.parse(text)
        leg = boarding.leg_from(here or boarding.legs[0].origin)
        leaves = bcbp.is_last_eu_exit(leg.destination)
    except (bcbp.BcbpError, bcbp.UnknownAirport) as exc:
        raise TripError(str(exc)) from exc
    warnings = []
    validate_at = None
    if not leaves:
        warnings.append(NOT_LAST_EXIT)
        last = boarding.last_eu_exit()
        validate_at = bcbp.destination_name(last) if last else None
        if len(boarding.legs) > 1:
            warnings.append(TRANSFER)
    day = leg.flight_date(today)
    if day != today:
        warnings.append(NOT_TODAY)
    return Trip("flight", leg.origin, bcbp.destination_name(leg.destination), day, tuple(warnings),
                validate_at, boarding_pass=text.strip("\r\n"))


def ferry(sailing: str, today: date) -> Trip:
    """A chosen sailing, e.g. ``HVH-HAR-2026-12-03T22:00``."""
    for prefix, port, _name, destination in FERRY_ROUTES:
        if sailing.startswith(prefix + "-"):
            day = date.fromisoformat(sailing[len(prefix) + 1:][:10])
            warnings = () if day == today else (NOT_TODAY,)
            return Trip("ferry", port, destination, day, warnings, sailing=sailing)
    raise TripError(f"unknown sailing {sailing!r}")


def sailing_parts(sailing: str) -> tuple[str, str, datetime]:
    """A sailing id's port of departure, destination and departure time."""
    for prefix, _port, name, destination in FERRY_ROUTES:
        if sailing.startswith(prefix + "-"):
            return name, destination, datetime.fromisoformat(sailing[len(prefix) + 1:])
    raise TripError(f"unknown sailing {sailing!r}")


def sailings(today: date) -> list[str]:
    """Today's evening sailings of each route (the ferries that leave the EU)."""
    times = {"HVH-HAR": "22:00", "RTM-HUL": "21:00"}
    return [f"{prefix}-{today.isoformat()}T{times[prefix]}" for prefix, *_ in FERRY_ROUTES]
