"""When "Validate now" may be pressed: the phone is inside a validation zone
of an exit point, with an accurate real GPS fix and a fresh token from one
of that exit point's sensor posts. The API weighs the evidence again (and
sends weak evidence to the desk); this only spares the traveller a request
that cannot succeed, and says what is missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.presence import point_in_zone
from shared.traveller_client import ExitPoint

from .presence import Evidence

MAX_ACCURACY_M = 50.0  # a fix less precise than this cannot place the phone in a terminal
MAX_FIX_AGE = timedelta(seconds=60)
MAX_TOKEN_AGE = timedelta(seconds=60)  # the API accepts the current and the previous 30 s step

# Why the button is off, most fundamental first.
NO_EXIT_POINTS = "no_exit_points"
NO_FIX = "no_fix"
MOCK_LOCATION = "mock_location"
POOR_ACCURACY = "poor_accuracy"
OUTSIDE_ZONE = "outside_zone"
NO_BEACON = "no_beacon"
OPEN = "open"


@dataclass(frozen=True)
class Gate:
    reason: str
    exit_point: ExitPoint | None = None
    zone: str | None = None

    @property
    def open(self) -> bool:
        return self.reason == OPEN


def validation_gate(evidence: Evidence, exit_points: list[ExitPoint], now: datetime) -> Gate:
    """Whether validation may be asked for now, and where (or why not)."""
    if not exit_points:
        return Gate(NO_EXIT_POINTS)
    fix = evidence.gps
    if fix is None or now - fix.at > MAX_FIX_AGE:
        return Gate(NO_FIX)
    if fix.mock:
        return Gate(MOCK_LOCATION)
    if fix.accuracy_m > MAX_ACCURACY_M:
        return Gate(POOR_ACCURACY)
    for point in exit_points:
        for zone in point.zones:
            if point_in_zone(fix.lat, fix.lon, zone.polygon):
                fresh = [b for b in evidence.beacons
                         if b.post_id in point.posts and timedelta(0) <= now - b.seen_at <= MAX_TOKEN_AGE]
                if not fresh:
                    return Gate(NO_BEACON, point, zone.name)
                return Gate(OPEN, point, zone.name)
    return Gate(OUTSIDE_ZONE)
