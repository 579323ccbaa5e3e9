"""Administration: exit points (with the validation zones, sensor posts and
sailings of the traveller's app), intermediaries, retailers, users, devices.

Each addition is in the audit trail, naming the administrator: an account
made for a shop (or an intermediary with its fee) is where an administrator
could otherwise act as a shop unseen."""
from __future__ import annotations

from flask.views import MethodView
from .blueprint import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import auth, database
from ..auth import current_principal, require
from ..models import ExitPoint, Intermediary, Retailer, User, utcnow
from ..problems import Problem
from ..schemas import (
    ExitPointSchema,
    IntermediarySchema,
    PasswordReset,
    RetailerSchema,
    SailingCreate,
    SailingOut,
    SensorPostCreate,
    SensorPostCreated,
    SensorPostSchema,
    UserCreate,
    UserSchema,
    ZoneCreate,
)
from ..services import audit, exit_point_presence, users

blp = Blueprint("admin", __name__, url_prefix="/api/v1", description="Administration (admin role)")


def _add(row, what: str, event: str, describe):
    """Insert ``row`` and its ``event`` in the audit trail (``describe(row)``
    gives the event's data); a clash with a unique column is a 409, not a 500."""
    session = database.session()
    session.add(row)
    try:
        session.flush()
        audit.record(session, None, event, current_principal().actor, at=utcnow(), **describe(row))
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Problem(409, "already_exists", f"This {what} already exists.")
    return row


def _record(event: str, exit_point: str, **data) -> None:
    """A change to where and when the traveller's app may validate, in the
    audit trail: a zone drawn over the wrong place, or a post's secret in
    the wrong hands, lets phones validate from there."""
    audit.record(database.session(), None, event, current_principal().actor, at=utcnow(),
                 exit_point=exit_point.upper(), **data)


def _exists(model, row_id, field: str):
    if row_id is not None and database.session().get(model, row_id) is None:
        raise Problem(422, "invalid_request", f"No {field.replace('_id', '')} {row_id}.",
                      errors={field: ["Does not exist."]})


@blp.route("/exit-points")
class ExitPoints(MethodView):
    @require("admin", "officer")
    @blp.response(200, ExitPointSchema(many=True))
    def get(self):
        """List exit points."""
        return database.session().scalars(select(ExitPoint).order_by(ExitPoint.code)).all()

    @require("admin")
    @blp.arguments(ExitPointSchema)
    @blp.response(201, ExitPointSchema)
    def post(self, body):
        """Add an exit point (airport, seaport or land border)."""
        return _add(ExitPoint(**body), "exit point", "exit_point.created",
                    lambda p: {"exit_point": p.code})


@blp.route("/intermediaries")
class Intermediaries(MethodView):
    @require("admin")
    @blp.response(200, IntermediarySchema(many=True))
    def get(self):
        """List intermediaries."""
        return database.session().scalars(select(Intermediary).order_by(Intermediary.id)).all()

    @require("admin")
    @blp.arguments(IntermediarySchema)
    @blp.response(201, IntermediarySchema)
    def post(self, body):
        """Add a tax-free intermediary."""
        return _add(Intermediary(**body), "intermediary", "intermediary.created",
                    lambda i: {"intermediary": i.id, "fee_bp": i.fee_bp})


@blp.route("/retailers")
class Retailers(MethodView):
    @require("admin")
    @blp.response(200, RetailerSchema(many=True))
    def get(self):
        """List retailers."""
        return database.session().scalars(select(Retailer).order_by(Retailer.id)).all()

    @require("admin")
    @blp.arguments(RetailerSchema)
    @blp.response(201, RetailerSchema)
    def post(self, body):
        """Add a retailer, optionally linked to its intermediary."""
        _exists(Intermediary, body.get("intermediary_id"), "intermediary_id")
        return _add(Retailer(**body), "retailer", "retailer.created",
                    lambda r: {"retailer": r.id, "vat_number": r.vat_number, "intermediary": r.intermediary_id})


@blp.post("/users")
@require("admin")
@blp.arguments(UserCreate)
@blp.response(201, UserCreate)
def create_user(body):
    """Add a user with a role; retailer and intermediary users are bound to theirs."""
    _exists(Retailer, body.get("retailer_id"), "retailer_id")
    _exists(Intermediary, body.get("intermediary_id"), "intermediary_id")
    password = body.pop("password")
    return _add(User(**body, password_hash=auth.hash_password(password)), "user", "user.created",
                lambda u: {"user": u.username, "user_id": u.id, "role": u.role, "retailer": u.retailer_id,
                           "intermediary": u.intermediary_id})


# --- where the traveller's app may validate ---------------------------------------

@blp.route("/exit-points/<code>/zones")
class Zones(MethodView):
    @require("admin")
    @blp.response(200, ZoneCreate(many=True))
    def get(self, code):
        """The validation zones of an exit point (GeoJSON Polygons)."""
        session = database.session()
        return exit_point_presence.zones_of(session, exit_point_presence.exit_point_by_code(session, code).id)

    @require("admin")
    @blp.arguments(ZoneCreate)
    @blp.response(201, ZoneCreate)
    def post(self, body, code):
        """Add a validation zone: a GeoJSON Polygon ([longitude, latitude])
        inside which the traveller's app may validate."""
        session = database.session()
        zone = exit_point_presence.add_zone(session, exit_point_presence.exit_point_by_code(session, code),
                                            body["name"], body["polygon"])
        _record("zone.added", code, zone=zone.id, name=zone.name, polygon=zone.polygon)
        session.commit()
        return zone


@blp.delete("/exit-points/<code>/zones/<int:zone_id>")
@require("admin")
@blp.response(204)
def delete_zone(code, zone_id):
    """Remove a validation zone."""
    session = database.session()
    exit_point_presence.remove_zone(session, exit_point_presence.exit_point_by_code(session, code), zone_id)
    _record("zone.removed", code, zone=zone_id)
    session.commit()


@blp.route("/exit-points/<code>/sensor-posts")
class SensorPosts(MethodView):
    @require("admin")
    @blp.response(200, SensorPostSchema(many=True))
    def get(self, code):
        """The exit point's sensor posts in service (never their secrets)."""
        session = database.session()
        return exit_point_presence.posts_of(session, exit_point_presence.exit_point_by_code(session, code).id)

    @require("admin")
    @blp.arguments(SensorPostCreate)
    @blp.response(201, SensorPostCreated)
    def post(self, body, code):
        """Add a sensor post; the answer holds its secret, shown this once,
        to load into the post. The database keeps it encrypted."""
        session = database.session()
        post, _secret = exit_point_presence.add_post(
            session, exit_point_presence.exit_point_by_code(session, code), body["id"])
        _record("sensor_post.added", code, sensor_post=post.id)
        session.commit()
        return post  # its secret (decrypted) is in the answer this once


@blp.delete("/exit-points/<code>/sensor-posts/<post_id>")
@require("admin")
@blp.response(200, SensorPostSchema)
def retire_sensor_post(code, post_id):
    """Retire a sensor post (stolen, replaced): its tokens count for nothing."""
    session = database.session()
    post = exit_point_presence.retire_post(session, exit_point_presence.exit_point_by_code(session, code),
                                           post_id, utcnow())
    _record("sensor_post.retired", code, sensor_post=post.id)
    session.commit()
    return post


@blp.route("/exit-points/<code>/sailings")
class Sailings(MethodView):
    @require("admin")
    @blp.response(200, SailingOut(many=True))
    def get(self, code):
        """Sailings from a seaport, from now on (at most 200)."""
        from datetime import timedelta

        session = database.session()
        point = exit_point_presence.exit_point_by_code(session, code)
        now = utcnow()
        return exit_point_presence.sailings_between(session, point.id, now, now + timedelta(days=60))[:200]

    @require("admin")
    @blp.arguments(SailingCreate)
    @blp.response(201, SailingOut)
    def post(self, body, code):
        """Add a ferry sailing from a seaport, for the app's "pick a sailing"."""
        from zoneinfo import ZoneInfo

        from flask import current_app

        session = database.session()
        sailing = exit_point_presence.add_sailing(
            session, exit_point_presence.exit_point_by_code(session, code),
            zone=ZoneInfo(current_app.config["RULESET"].timezone), **body)
        _record("sailing.added", code, sailing=sailing.id)
        session.commit()
        return sailing


def _user(user_id: int) -> User:
    # Ids are 32-bit in the database: a larger number names nobody.
    user = database.session().get(User, user_id) if user_id <= 2**31 - 1 else None
    if user is None:
        raise Problem(404, "not_found", f"No user {user_id}.")
    return user


@blp.post("/users/<int:user_id>/disable")
@require("admin")
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def disable_user(user_id):
    """Stop a user: no more logins, and every access token and web session
    they hold is refused from now on."""
    principal = current_principal()
    user = _user(user_id)
    if str(user.id) == principal.id:
        # Nobody is left to undo it if the last administrator does this.
        raise Problem(409, "cannot_disable_yourself", "An administrator cannot disable their own account.")
    session = database.session()
    users.disable(session, user, principal.actor, utcnow())
    session.commit()
    return user


@blp.post("/users/<int:user_id>/enable")
@require("admin")
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
def enable_user(user_id):
    """Let a disabled user log in again (tokens from before stay refused)."""
    user = _user(user_id)
    session = database.session()
    users.enable(session, user, current_principal().actor, utcnow())
    session.commit()
    return user


@blp.put("/users/<int:user_id>/password")
@require("admin")
@blp.arguments(PasswordReset)
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND")
def reset_password(body, user_id):
    """Give a user a new password (at least 12 characters, not a common
    one); every access token and web session they hold ends."""
    user = _user(user_id)
    session = database.session()
    users.set_password(session, user, body["password"], current_principal().actor, utcnow())
    session.commit()
