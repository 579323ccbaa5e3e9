"""Devices at exit points: registration and pairing by one-time code."""
from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from .. import auth
from ..models import Device, ExitPoint, PairingCode
from ..problems import Problem


def register(session: Session, name: str, kind: str, exit_point: ExitPoint) -> tuple[Device, str]:
    """A new device and its token (shown once; only its hash is kept)."""
    device_id = str(uuid.uuid4())
    token, token_hash = auth.new_device_token(device_id)
    device = Device(id=device_id, name=name, kind=kind, exit_point=exit_point, token_hash=token_hash)
    session.add(device)
    return device, token


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def new_pairing_code(session: Session, name: str, kind: str, exit_point: ExitPoint,
                     now: datetime, ttl: timedelta) -> str:
    """A one-time code that becomes the device named ``name`` when scanned."""
    code = secrets.token_urlsafe(24)
    session.add(PairingCode(code_hash=_hash(code), device_name=name, kind=kind,
                            exit_point_id=exit_point.id, created_at=now, expires_at=now + ttl))
    return code


def pair(session: Session, code: str, now: datetime) -> tuple[Device, str]:
    """Exchange a pairing code for a new device and its token, once."""
    pairing = session.get(PairingCode, _hash(code))
    if pairing is None:
        raise Problem(404, "pairing_code_unknown", "This pairing code is not known.")
    if pairing.expires_at <= now:
        raise Problem(410, "pairing_code_expired", "This pairing code has expired; print a new one.")
    claimed = session.execute(
        update(PairingCode)
        .where(PairingCode.code_hash == pairing.code_hash, PairingCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not claimed:
        raise Problem(409, "pairing_code_used", "This pairing code was already used; print a new one.")
    device, token = register(session, pairing.device_name, pairing.kind,
                             session.get(ExitPoint, pairing.exit_point_id))
    session.flush()
    session.execute(update(PairingCode).where(PairingCode.code_hash == pairing.code_hash)
                    .values(device_id=device.id).execution_options(synchronize_session=False))
    return device, token
