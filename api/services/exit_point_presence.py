"""Where the traveller's app may validate: validation zones and sensor posts
of exit points, and ferry sailings from seaports. Operators manage them
(admin API, ``flask --app api`` commands); the app's validations read them.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import countries, presence

from ..database import HotStatement
from ..models import ExitPoint, Sailing, SensorPost, ValidationZone
from ..problems import Problem


def exit_point_by_code(session: Session, code: str) -> ExitPoint:
    exit_point = session.scalar(select(ExitPoint).where(ExitPoint.code == (code or "").upper()))
    if exit_point is None:
        raise _no_exit_point(code)
    return exit_point


def _no_exit_point(code: str) -> Problem:
    return Problem(404, "exit_point_not_found", f"No exit point {code}.")


@dataclass(frozen=True)
class Place:
    """An exit point as a traveller's validation reads it: what the trip
    rules need of its row, and its zones' polygons."""

    id: int
    code: str
    name: str
    kind: str
    zones: tuple[dict, ...]


# The exit point and its zones, one row per zone, in one hot statement:
# every validation from the traveller's app reads them.
_EXIT_POINTS, _ZONES = ExitPoint.__table__, ValidationZone.__table__
_PLACE = HotStatement(
    select(_EXIT_POINTS.c.id, _EXIT_POINTS.c.code, _EXIT_POINTS.c.name, _EXIT_POINTS.c.kind, _ZONES.c.polygon)
    .select_from(_EXIT_POINTS.outerjoin(_ZONES, _ZONES.c.exit_point_id == _EXIT_POINTS.c.id))
    .where(_EXIT_POINTS.c.code == bindparam("code"))
    .order_by(_ZONES.c.name))


def place(session: Session, code: str) -> Place:
    """The exit point ``code`` names, with its validation zones; 404 if none."""
    rows = _PLACE.execute(session, {"code": (code or "").upper()}).fetchall()
    if not rows:
        raise _no_exit_point(code)
    id_, code_, name, kind, _ = rows[0]
    return Place(id_, code_, name, kind, tuple(polygon for *_, polygon in rows if polygon is not None))


# --- zones -------------------------------------------------------------------------

def add_zone(session: Session, exit_point: ExitPoint, name: str, polygon: dict) -> ValidationZone:
    try:
        presence.check_polygon(polygon)
    except presence.ZoneError as exc:
        raise Problem(422, "invalid_zone", f"Not a usable zone: {exc}.", errors={"polygon": [str(exc)]})
    zone = ValidationZone(exit_point_id=exit_point.id, name=name, polygon=polygon)
    session.add(zone)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Problem(409, "already_exists", f"{exit_point.code} already has a zone named {name!r}.")
    return zone


def zones_of(session: Session, exit_point_id: int) -> list[ValidationZone]:
    return list(session.scalars(select(ValidationZone).where(ValidationZone.exit_point_id == exit_point_id)
                                .order_by(ValidationZone.name)))


def remove_zone(session: Session, exit_point: ExitPoint, zone_id: int) -> None:
    zone = session.get(ValidationZone, zone_id)
    if zone is None or zone.exit_point_id != exit_point.id:
        raise Problem(404, "zone_not_found", f"{exit_point.code} has no zone {zone_id}.")
    session.delete(zone)


# --- sensor posts ------------------------------------------------------------------

def add_post(session: Session, exit_point: ExitPoint, post_id: str) -> tuple[SensorPost, str]:
    """A new sensor post with a fresh secret; returns the post and the secret
    (hex) to load into the post. The secret is shown this once."""
    if session.get(SensorPost, post_id) is not None:
        raise Problem(409, "already_exists", f"Sensor post {post_id} already exists.")
    secret = secrets.token_hex(presence.SECRET_BYTES)
    post = SensorPost(id=post_id, exit_point_id=exit_point.id, secret=secret)
    session.add(post)
    session.flush()
    return post, secret


def posts_of(session: Session, exit_point_id: int) -> list[SensorPost]:
    return list(session.scalars(select(SensorPost).where(
        SensorPost.exit_point_id == exit_point_id, SensorPost.retired_at.is_(None)).order_by(SensorPost.id)))


def retire_post(session: Session, exit_point: ExitPoint, post_id: str, now: datetime) -> SensorPost:
    """A retired post's tokens count for nothing from now on (a post stolen,
    or replaced)."""
    post = session.get(SensorPost, post_id)
    if post is None or post.exit_point_id != exit_point.id:
        raise Problem(404, "sensor_post_not_found", f"{exit_point.code} has no sensor post {post_id}.")
    if post.retired_at is None:
        post.retired_at = now
    return post


def posts_named(session: Session, post_ids: list[str]) -> dict[str, presence.Post]:
    """The unretired posts among ``post_ids``, whatever their exit point,
    with their secrets, for ``shared.presence.judge``."""
    if not post_ids:
        return {}
    rows = session.execute(
        select(SensorPost.id, SensorPost.secret, ExitPoint.code)
        .join(ExitPoint, SensorPost.exit_point_id == ExitPoint.id)
        .where(SensorPost.id.in_(sorted(set(post_ids))[:50]), SensorPost.retired_at.is_(None))
    ).all()
    return {post_id: presence.Post(post_id, code, bytes.fromhex(secret)) for post_id, secret, code in rows}


# --- sailings ----------------------------------------------------------------------

def sailing_id(exit_point: str, destination_code: str, departs_at: datetime, zone: ZoneInfo) -> str:
    """``HVH-HAR-2026-12-03T22:00``: port, destination, local departure time."""
    return f"{exit_point}-{destination_code}-{departs_at.astimezone(zone):%Y-%m-%dT%H:%M}"


def add_sailing(session: Session, exit_point: ExitPoint, *, operator: str, route: str, destination_port: str,
                destination_code: str, destination_country: str, departs_at: datetime,
                zone: ZoneInfo) -> Sailing:
    if exit_point.kind != "seaport":
        raise Problem(422, "invalid_request", f"{exit_point.code} is not a seaport.",
                      errors={"exit_point": ["Sailings leave from seaports."]})
    if not countries.is_country(destination_country):
        raise Problem(422, "invalid_request", "Not a country code.", errors={"destination_country": ["Unknown."]})
    sid = sailing_id(exit_point.code, destination_code.upper(), departs_at, zone)
    existing = session.get(Sailing, sid)
    if existing is not None:
        return existing
    sailing = Sailing(id=sid, exit_point_id=exit_point.id, operator=operator, route=route,
                      destination_port=destination_port, destination_country=destination_country.upper(),
                      departs_at=departs_at)
    session.add(sailing)
    session.flush()
    return sailing


def sailings_between(session: Session, exit_point_id: int, start: datetime, end: datetime) -> list[Sailing]:
    """Sailings from the exit point departing in [start, end)."""
    return list(session.scalars(select(Sailing).where(
        Sailing.exit_point_id == exit_point_id, Sailing.departs_at >= start,
        Sailing.departs_at < end).order_by(Sailing.departs_at)))
