"""Administration: exit points, intermediaries, retailers, users, devices."""
from __future__ import annotations

from flask.views import MethodView
from .blueprint import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import auth, database
from ..auth import require
from ..models import ExitPoint, Intermediary, Retailer, User
from ..problems import Problem
from ..schemas import (
    ExitPointSchema,
    IntermediarySchema,
    RetailerSchema,
    UserCreate,
)

blp = Blueprint("admin", __name__, url_prefix="/api/v1", description="Administration (admin role)")


def _add(row, what: str):
    """Insert ``row``; a clash with a unique column is a 409, not a 500."""
    session = database.session()
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Problem(409, "already_exists", f"This {what} already exists.")
    return row


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
        return _add(ExitPoint(**body), "exit point")


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
        return _add(Intermediary(**body), "intermediary")


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
        return _add(Retailer(**body), "retailer")


@blp.post("/users")
@require("admin")
@blp.arguments(UserCreate)
@blp.response(201, UserCreate)
def create_user(body):
    """Add a user with a role; retailer and intermediary users are bound to theirs."""
    _exists(Retailer, body.get("retailer_id"), "retailer_id")
    _exists(Intermediary, body.get("intermediary_id"), "intermediary_id")
    password = body.pop("password")
    return _add(User(**body, password_hash=auth.hash_password(password)), "user")
