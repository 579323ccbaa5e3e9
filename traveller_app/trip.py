"""The traveller's trip: a scanned boarding pass or a chosen ferry sailing,
and what to warn about (not the last EU exit, not today, a transfer).

Boarding passes are read by :mod:`shared.bcbp`; airports by
:mod:`shared.airports`. Ferry sailings are the ones the API lists for each
seaport (``GET /traveller/exit-points``): a ferry trip names one of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from shared import bcbp
from shared.countries import country_name
from shared.traveller_client import ExitPoint, Sailing

# The exit points' calendar: "today" for a flight or a sailing is the day
# in the Netherlands, as the API judges it, whatever the phone's time zone.
EXIT_TIMEZONE = ZoneInfo("Europe/Amsterdam")

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


def ferry(port: ExitPoint, sailing: Sailing, today: date) -> Trip:
    """A sailing chosen from those the API listed for seaport ``port``."""
    day = sailing.departs_at.astimezone(EXIT_TIMEZONE).date()
    warnings = () if day == today else (NOT_TODAY,)
    return Trip("ferry", port.code, destination(sailing), day, warnings, sailing=sailing.id)


def destination(sailing: Sailing) -> str:
    """"Harwich (United Kingdom)"."""
    try:
        return f"{sailing.destination_port} ({country_name(sailing.destination_country)})"
    except ValueError:
        return sailing.destination_port


def sailings(exit_points: list[ExitPoint], now: datetime) -> list[tuple[ExitPoint, Sailing]]:
    """The sailings the API listed that have not left yet, soonest first,
    each with its seaport."""
    found = [(port, s) for port in exit_points for s in port.sailings if s.departs_at > now]
    return sorted(found, key=lambda pair: pair[1].departs_at)


def local_today(now: datetime | None = None) -> date:
    """Today at the exit points (Europe/Amsterdam)."""
    return (now or datetime.now(timezone.utc)).astimezone(EXIT_TIMEZONE).date()
