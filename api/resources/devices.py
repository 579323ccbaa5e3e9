"""Devices at exit points: registered by an admin, or paired by scanning a
one-time code printed with ``flask --app api pair-device``."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, request
from flask.views import MethodView
from .blueprint import Blueprint
from sqlalchemy import select

from .. import database
from ..auth import current_principal, require
from ..models import Device, ExitPoint, utcnow
from ..observability import metrics
from ..problems import Problem
from ..schemas import (DeviceCreate, DeviceCreated, DeviceSchema, DeviceSelf, FleetDevice, Heartbeat,
                       HeartbeatRequest, PairRequest, page_of)
from ..services import devices, fleet, throttle

blp = Blueprint("devices", __name__, url_prefix="/api/v1/devices", description="Devices at exit points")


@blp.route("")
class Devices(MethodView):
    @require("admin")
    @blp.response(200, DeviceSchema(many=True))
    def get(self):
        """List devices, revoked ones included."""
        return database.session().scalars(select(Device).order_by(Device.created_at)).all()

    @require("admin")
    @blp.arguments(DeviceCreate)
    @blp.response(201, DeviceCreated)
    def post(self, body):
        """Register a kiosk, tablet or handheld at an exit point; the response
        holds its device token, shown this once."""
        session = database.session()
        exit_point = session.scalar(select(ExitPoint).where(ExitPoint.code == body["exit_point"].upper()))
        if exit_point is None:
            raise Problem(422, "invalid_request", "No such exit point.",
                          errors={"exit_point": ["No exit point with this code."]})
        device, token = devices.register(session, body["name"], body["kind"], exit_point)
        session.commit()
        device.token = token  # dumped this once
        return device


@blp.get("/me")
@require("device")
@blp.response(200, DeviceSelf)
def me():
    """The calling device and its exit point (code, name, where the customs
    desk is), so a kiosk needs no local configuration of them."""
    return database.session().get(Device, current_principal().id)


@blp.post("/me/heartbeat")
@require("device")
@blp.arguments(HeartbeatRequest)
@blp.response(200, Heartbeat)
def heartbeat(body):
    """The calling device's health: app version, offline queue, camera,
    free disk and its clock (the API computes the skew). The last one is
    kept per device; the fleet page turns it into green, amber or red.
    Send one every half minute or so; a lost one needs no retry."""
    device = current_principal()
    session = database.session()
    stored = fleet.record_heartbeat(session, device.id, body, utcnow())
    session.commit()
    metrics.count_heartbeat(device.exit_point_code, device.device_kind)
    return stored


@blp.get("/fleet")
@require("admin", "officer")
@blp.response(200, page_of(FleetDevice))
def fleet_states():
    """Every device that is not revoked, by exit point: its last heartbeat
    and its state (green, amber, red) with the reasons, by the rules in
    the FLEET_RULES setting."""
    config = current_app.config
    states = fleet.fleet(database.session(), utcnow(), config["FLEET"], ZoneInfo(config["RULESET"].timezone))
    items = [{**vars(s), "reasons": [{"code": r.code, "state": r.state, "message": r.message} for r in s.reasons]}
             for s in states]
    return {"items": items, "next_cursor": None}


@blp.delete("/<device_id>")
@require("admin")
@blp.response(200, DeviceSchema)
def revoke(device_id):
    """Revoke a device: its token stops working at once."""
    session = database.session()
    device = session.get(Device, device_id)
    if device is None:
        raise Problem(404, "device_not_found", "No such device.")
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        session.commit()
    return device


@blp.post("/pair")
@blp.arguments(PairRequest)
@blp.response(201, DeviceCreated)
@blp.doc(security=[])
def pair(body):
    """Exchange a one-time pairing code (from the pairing QR code) for a
    device token. A used, expired or unknown code is refused."""
    session = database.session()
    now = utcnow()
    throttle.hit(session, f"pair-ip:{request.remote_addr}",
                 current_app.config["LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE"], 60, now)
    device, token = devices.pair(session, body["code"], now)
    session.commit()
    device.token = token  # dumped this once
    return device
