"""Scans at exit points: a device reads a form's QR code or a passport."""
from __future__ import annotations

from flask import current_app
from .blueprint import Blueprint

from .. import database
from ..auth import current_principal, require, unread_device
from ..models import utcnow
from ..observability import metrics
from ..schemas import (
    PassportScanRequest,
    PassportScanResponse,
    RefusedReplays,
    RefusedReplaysRecorded,
    ScanRequest,
    ScanResponse,
)
from ..services import forms, refused_replays, scans, throttle
from .common import IDEMPOTENCY_HEADER, idempotent, keyring

blp = Blueprint("scans", __name__, url_prefix="/api/v1/scans", description="Scans at exit points")
# One instance each, made once: making a marshmallow schema (it copies its
# fields) costs several times what dumping a verdict does.
_SCAN_RESPONSE, _PASSPORT_SCAN_RESPONSE = ScanResponse(), PassportScanResponse()


def _context(answer=None) -> scans.ScanContext:
    return scans.ScanContext(
        ruleset=current_app.config["RULESET"],
        policy=current_app.config["RISK"],
        keys=keyring().verifying(database.session()),
        sampling_key=current_app.config["RISK_SAMPLING_KEY"].encode(),
        answer=answer,
    )


@blp.post("")
# The device's row is read with the form's facts (services/scans.py).
@require("device", device_row_later=True)
@blp.arguments(ScanRequest)
@blp.response(200, ScanResponse)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def scan(body):
    """Turn a scanned QR payload into a verdict: validated, check_required or
    refused (with a reason code). Scanning the same form again gives the same
    verdict; a form is never validated twice. Devices that queued scans while
    offline send them with ``queued``, ``scanned_at`` and the Idempotency-Key
    of the first attempt; a live scan is dated when it arrives."""
    given = []

    def judge(remember):
        # The answer for a key is stored as the verdict is about to be written.
        answer = None if remember is None else (lambda outcome: remember(outcome, 200))
        # Nothing is written after the scan: its transaction commits with it.
        outcome = scans.scan(database.session(), unread_device() or current_principal(), body["qr_payload"],
                             _context(answer), utcnow(), body["scanned_at"],
                             queued=body["queued"], ends=True)
        given[:] = [outcome.verdict]
        return outcome, 200

    # The key stands for the scan, not for how it travelled: a queued resend
    # of a live attempt that did reach the API gets that attempt's answer.
    return _counted(idempotent({"qr_payload": body["qr_payload"]}, judge, dump=_SCAN_RESPONSE.dump,
                               answers_early=True), given)


@blp.post("/passport")
@require("device")
@blp.arguments(PassportScanRequest)
@blp.response(200, PassportScanResponse)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def scan_passport(body):
    """A passport read at the exit point (its machine-readable zone): a verdict
    for every open form of its holder, as if each QR code had been scanned."""
    given = []

    def judge():
        key = forms.passport_key(current_app.config["PASSPORT_HASH_KEY"].encode(),
                                 body["passport_country"], body["passport_number"])
        outcomes = scans.scan_passport(database.session(), current_principal(), key, _context(),
                                       utcnow(), body["scanned_at"], queued=body["queued"])
        given[:] = [outcome.verdict for outcome in outcomes]
        return {"items": outcomes}, 200

    return _counted(idempotent({"passport_number": body["passport_number"],
                                "passport_country": body["passport_country"]}, judge,
                               dump=_PASSPORT_SCAN_RESPONSE.dump), given)


@blp.post("/refused")
@require("device")
@blp.arguments(RefusedReplays)
@blp.response(200, RefusedReplaysRecorded)
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def report_refused(body):
    """Scans this device queued offline that the API refused when they were
    sent (4xx): reported so that supervisors see them on the dashboard. A
    report sent again is kept once. Form numbers only, never passport
    numbers or QR payloads. At most REFUSED_REPORTS_PER_DEVICE_PER_HOUR
    reports (of up to 100 each) per device: a stolen device token cannot
    fill the table."""
    session = database.session()
    device, now = current_principal(), utcnow()
    throttle.hit(session, f"refused-report:{device.id}",
                 current_app.config["REFUSED_REPORTS_PER_DEVICE_PER_HOUR"], 3600, now)
    recorded = refused_replays.record(session, device, body["items"], now)
    session.commit()
    return {"recorded": recorded}


def _counted(response, verdicts: list[str]):
    """Count the verdicts of a committed scan; a replayed answer was
    counted when it was first given."""
    if response.status_code == 200 and "Idempotent-Replayed" not in response.headers:
        device = current_principal()
        channel = scans.channel_of(device)
        for verdict in verdicts:
            metrics.count_verdict(device.exit_point_code, channel, verdict)
    return response
