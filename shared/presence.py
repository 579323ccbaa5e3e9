"""Proof that a traveller's phone is at the exit point: sensor posts and zones.

A **sensor post** is a Bluetooth beacon opposite a customs desk. It holds a
32-byte secret, shared only with the API, and broadcasts a token that
changes every ``step_seconds`` (like Eddystone-EID or TOTP): the first 16
hex characters of HMAC-SHA256(secret, "<post id>:<step>"), where step is
floor(unix time / step_seconds). A token copied yesterday, or at another
exit point, is worth nothing now and here.

A **validation zone** is a GeoJSON Polygon (longitude, latitude order) in
which the phone's GPS position must lie.

``judge`` weighs what the phone sends (its **evidence**) and says what is
wrong with it, for the risk engine (``shared.risk``) to turn into reasons
for a check at the desk. Nothing here trusts the phone's clock: tokens are
checked against the API's time.

Pure Python: the API, the traveller's app (its simulated beacons) and tests
all use it.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping, Sequence

TOKEN_LENGTH = 16
SECRET_BYTES = 32
# How far back a token that does not verify is searched for, to tell a
# replay (a real token, too old) from a forgery (never broadcast).
REPLAY_SEARCH = timedelta(hours=24)


# --- tokens ----------------------------------------------------------------------

def token_step(at: datetime, step_seconds: int = 30) -> int:
    """The step of the rotating token at ``at`` (timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return math.floor(at.timestamp() / step_seconds)


def token_for_step(secret: bytes, post_id: str, step: int) -> str:
    """The token a post broadcasts during ``step``."""
    mac = hmac.new(secret, f"{post_id}:{step}".encode(), hashlib.sha256)
    return mac.hexdigest()[:TOKEN_LENGTH]


def beacon_token(secret: bytes, at: datetime, step_seconds: int = 30, *, post_id: str) -> str:
    """The token post ``post_id`` broadcasts at ``at``."""
    return token_for_step(secret, post_id, token_step(at, step_seconds))


# --- zones -----------------------------------------------------------------------

class ZoneError(ValueError):
    """A polygon that is not a usable GeoJSON Polygon."""


def check_polygon(polygon: object) -> dict:
    """``polygon`` if it is a GeoJSON Polygon: closed linear rings of at least
    four [longitude, latitude] positions, the first the outline, any others
    holes. Raises ZoneError naming what is wrong."""
    if not isinstance(polygon, dict) or polygon.get("type") != "Polygon":
        raise ZoneError('a zone is a GeoJSON object of "type": "Polygon"')
    rings = polygon.get("coordinates")
    if not isinstance(rings, list) or not rings:
        raise ZoneError("a Polygon has a list of linear rings as coordinates")
    for ring in rings:
        if not isinstance(ring, list) or len(ring) < 4:
            raise ZoneError("a linear ring has at least four positions")
        for position in ring:
            if (not isinstance(position, list) or len(position) not in (2, 3)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position)):
                raise ZoneError("a position is [longitude, latitude]")
            lon, lat = position[0], position[1]
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ZoneError("longitude is -180..180 and latitude -90..90 (GeoJSON puts longitude first)")
        if ring[0][:2] != ring[-1][:2]:
            raise ZoneError("a linear ring ends where it starts")
    return polygon


def _on_segment(x: float, y: float, a: Sequence[float], b: Sequence[float]) -> bool:
    (x1, y1), (x2, y2) = a[:2], b[:2]
    if (x - x1) * (y2 - y1) - (y - y1) * (x2 - x1) != 0:
        return False
    return min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2)


def _in_ring(x: float, y: float, ring: Sequence[Sequence[float]]) -> bool | None:
    """True inside, False outside, None on the ring itself."""
    inside = False
    for a, b in zip(ring, ring[1:]):
        if _on_segment(x, y, a, b):
            return None
        (x1, y1), (x2, y2) = a[:2], b[:2]
        # Even-odd rule: count crossings of a ray going east from the point.
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def point_in_zone(lat: float, lon: float, polygon: dict) -> bool:
    """Whether the position lies in the GeoJSON Polygon (its outline
    counts as inside; the inside of a hole as outside, the hole's edge as
    inside)."""
    outline, *holes = polygon["coordinates"]
    where = _in_ring(lon, lat, outline)
    if where is None:
        return True
    if not where:
        return False
    return all(_in_ring(lon, lat, hole) is not True for hole in holes)


# --- evidence --------------------------------------------------------------------

@dataclass(frozen=True)
class GpsFix:
    lat: float
    lon: float
    accuracy_m: float
    mock: bool
    at: datetime


@dataclass(frozen=True)
class Sighting:
    """A sensor post's token as the phone heard it."""

    post_id: str
    token: str
    seen_at: datetime
    rssi: int | None = None


@dataclass(frozen=True)
class Evidence:
    install_id: str
    gps: GpsFix | None
    beacons: tuple[Sighting, ...] = ()


@dataclass(frozen=True)
class Post:
    """A sensor post as the API knows it."""

    post_id: str
    exit_point: str
    secret: bytes


@dataclass(frozen=True)
class PresencePolicy:
    """How good evidence must be. Tokens of ``accepted_steps`` steps count
    (2: the current and the previous one), and only if the phone heard them
    at most ``beacon_max_age_seconds`` ago; a GPS fix counts if at most
    ``gps_max_age_seconds`` old and accurate to ``gps_max_accuracy_m``."""

    step_seconds: int = 30
    accepted_steps: int = 2
    beacon_max_age_seconds: int = 60
    gps_max_accuracy_m: float = 50.0
    gps_max_age_seconds: int = 120
    clock_skew_seconds: int = 30  # a phone's clock ahead of the API's by this much is tolerated

    def __post_init__(self) -> None:
        if self.step_seconds < 1 or self.accepted_steps < 1:
            raise ValueError("step_seconds and accepted_steps are at least 1")
        if self.gps_max_accuracy_m <= 0 or self.beacon_max_age_seconds < 0 or self.gps_max_age_seconds < 0:
            raise ValueError("presence limits must be positive")


def policy_from_dict(data: Mapping) -> PresencePolicy:
    """A policy from configuration; unknown keys raise ValueError."""
    known = set(PresencePolicy.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown presence policy settings: {', '.join(unknown)}")
    return PresencePolicy(**data)


# What was wrong with the beacons, worst first.
FRESH, NONE, STALE, INVALID = "fresh", "none", "stale", "invalid"


@dataclass(frozen=True)
class PresenceReport:
    """What the evidence proves. ``problems`` are (code, detail) pairs, each
    a reason to check the traveller at the desk; none means good evidence.
    ``here`` is False when nothing at all places the phone at this exit
    point (no fresh token of its posts, no position in its zones)."""

    exit_point: str
    beacons: str  # FRESH, NONE, STALE or INVALID
    in_zone: bool | None  # None without a GPS fix
    problems: tuple[tuple[str, str], ...] = field(default=())

    @property
    def here(self) -> bool:
        return self.beacons == FRESH or bool(self.in_zone)


def _sighting_problem(sighting: Sighting, exit_point: str, posts: Mapping[str, Post],
                      policy: PresencePolicy, now: datetime) -> tuple[str, str] | None:
    """None for a fresh, genuine token of a post of ``exit_point``; otherwise
    (STALE or INVALID, why)."""
    post = posts.get(sighting.post_id)
    if post is None:
        return INVALID, f"a token from {sighting.post_id!r}, which is no sensor post"
    if post.exit_point != exit_point:
        return INVALID, f"a token from sensor post {post.post_id} of {post.exit_point}, not of {exit_point}"
    age = (now - sighting.seen_at).total_seconds()
    step = token_step(now, policy.step_seconds)
    token = (sighting.token or "").lower()
    accepted = [token_for_step(post.secret, post.post_id, step - n) for n in range(policy.accepted_steps)]
    genuine = any(hmac.compare_digest(token, t) for t in accepted)
    if genuine and -policy.clock_skew_seconds <= age <= policy.beacon_max_age_seconds:
        return None
    if genuine:
        return STALE, f"the token of {post.post_id} was heard {int(age)} s ago (at most {policy.beacon_max_age_seconds} s)"
    # Not current: a replay of an older token, or one the post never sent.
    oldest = step - int(REPLAY_SEARCH.total_seconds() // policy.step_seconds)
    for earlier in range(step - policy.accepted_steps, oldest, -1):
        if hmac.compare_digest(token, token_for_step(post.secret, post.post_id, earlier)):
            minutes = (step - earlier) * policy.step_seconds // 60
            return STALE, f"a replayed token of {post.post_id}, broadcast {minutes} min ago"
    return INVALID, f"a token that {post.post_id} never broadcast (forged)"


def judge(evidence: Evidence, exit_point: str, zones: Sequence[dict], posts: Mapping[str, Post],
          policy: PresencePolicy, now: datetime) -> PresenceReport:
    """Weigh the phone's evidence of being at ``exit_point`` now.

    ``zones`` are that exit point's polygons; ``posts`` every sensor post the
    evidence names, whatever its exit point (so a token of another exit
    point's post is recognised as such)."""
    problems: list[tuple[str, str]] = []
    fresh, stale, invalid = False, [], []
    for sighting in evidence.beacons:
        found = _sighting_problem(sighting, exit_point, posts, policy, now)
        if found is None:
            fresh = True
        elif found[0] == STALE:
            stale.append(found[1])
        else:
            invalid.append(found[1])
    # A forged or foreign token is contradictory evidence even beside a
    # good one: somebody is playing tricks.
    if invalid:
        problems.append(("app_beacon_invalid", "The phone sent " + "; ".join(invalid) + "."))
    if fresh:
        beacons = FRESH
    else:
        beacons = INVALID if invalid else STALE if stale else NONE
        detail = (f"No current token from a sensor post of {exit_point}"
                  + (": " + "; ".join(stale) if stale else "") + ".")
        problems.append(("app_no_fresh_beacon", detail))

    gps = evidence.gps
    in_zone = None
    if gps is None:
        problems.append(("app_outside_zone", "The phone had no GPS position."))
    else:
        in_zone = any(point_in_zone(gps.lat, gps.lon, zone) for zone in zones)
        if gps.mock:
            problems.append(("app_mock_location", "The phone reports a mock (simulated) location."))
        if gps.accuracy_m > policy.gps_max_accuracy_m:
            problems.append(("app_gps_accuracy",
                             f"GPS accurate to {gps.accuracy_m:.0f} m; at most "
                             f"{policy.gps_max_accuracy_m:.0f} m is accepted."))
        age = (now - gps.at).total_seconds()
        if not -policy.clock_skew_seconds <= age <= policy.gps_max_age_seconds:
            problems.append(("app_gps_stale",
                             f"The GPS position is {int(age)} s old (at most {policy.gps_max_age_seconds} s)."))
        if not in_zone:
            problems.append(("app_outside_zone",
                             f"The GPS position is outside every validation zone of {exit_point}."))
    return PresenceReport(exit_point, beacons, in_zone, tuple(problems))
