"""A scan at an exit point becomes a verdict.

validated: the export is certified now. check_required: the traveller goes to
the customs desk; an officer decides. refused: the form can never be
validated here, with a reason the kiosk can say in the traveller's language.

A form leaves ``issued`` through one atomic compare-and-set, so two devices
scanning the same form at the same moment still produce one outcome, and a
re-scan returns the verdict already given.

A form waiting for a check that is scanned at another exit point follows
the traveller: its check moves to that exit point's desk (the desk the
verdict sends the traveller to), once, by compare-and-set, with an event in
the audit trail.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from shared import qrtoken, risk, rules

from .. import auth
from ..auth import Principal
from ..database import HotStatement
from ..models import Check, Device, ExitPoint, Form, FormLine, Intermediary, Retailer, Scan, held
from ..problems import Problem
from . import audit, webhooks

VALIDATED, CHECK_REQUIRED, REFUSED = "validated", "check_required", "refused"

REFUSALS = {
    "malformed_token": "This is not a tax-free form code.",
    "unknown_key": "This form was not issued by a known tax-free system.",
    "bad_signature": "This form code has been altered and cannot be accepted.",
    "form_not_found": "This form is not known. Ask the shop or your refund company.",
    "form_cancelled": "This form was cancelled by the shop.",
    "deadline_passed": "The export deadline for this form passed on {deadline}.",
    "rejected_at_check": "Customs refused the export of these goods at a physical check.",
    "validated_elsewhere": "This form was already validated at another exit point.",
}


@dataclass
class ScanOutcome:
    verdict: str
    reason_code: str | None
    message: str
    form_id: str | None = None
    export_deadline: str | None = None
    desk_location: str | None = None
    payer: str | None = None  # who pays the refund, for a validated form
    fired: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class ScanContext:
    """The configuration a scan is judged by."""

    ruleset: rules.RuleSet
    policy: risk.RiskPolicy
    keys: qrtoken.Keys
    sampling_key: bytes  # the random check's secret (RISK_SAMPLING_KEY)
    app: risk.AppFacts | None = None  # a validation from the traveller's app
    # Told the verdict just before the write that records it, in its
    # transaction: the API stores its answer for an Idempotency-Key there,
    # before that write takes the counter every writer waits for. A write
    # that loses its compare-and-set is rolled back with what this did, and
    # the verdict given instead is told again.
    answer: Callable[[ScanOutcome], None] | None = None


def channel_of(principal: Principal) -> str:
    """How the traveller came, by who made the scan: "kiosk" (a kiosk or
    tablet holder they used themselves), "app" (their own phone) or "desk"
    (an officer, on a handheld or logged in)."""
    if principal.kind == "device":
        return "desk" if principal.device_kind == "handheld" else "kiosk"
    return "app" if principal.kind == "traveller" else "desk"


def _refused(reason: str, form: FormFacts | None = None, form_id: str | None = None) -> ScanOutcome:
    deadline = form.export_deadline.isoformat() if form is not None else None
    return ScanOutcome(
        REFUSED,
        reason,
        REFUSALS[reason].format(deadline=deadline or "its deadline"),
        form_id=form.id if form is not None else form_id,
        export_deadline=deadline,
    )


@dataclass
class FormFacts:
    """What judging a scan reads of a form, in one statement (``_FACTS``):
    the form's own columns, who pays its refund, its lines' categories, the
    traveller's recent forms, the desk of the exit point scanning it and
    whether any webhook listens to the form's status changes.
    Plain values rather than ORM objects: a scan is the API's hottest path.
    """

    id: str
    status: str
    export_deadline: date
    total_cents: int
    vat_cents: int
    refund_cents: int
    validated_total_cents: int | None
    exit_point_id: int | None
    passport_key: str | None
    passport_country: str
    # The traveller's app proves a form is theirs with it; kept out of repr
    # (personal data).
    date_of_birth: date | None = field(repr=False)
    retailer_vat: str
    payer: str  # the intermediary, or the shop itself
    categories: frozenset[str]
    forms_by_traveller_recent: int
    desk_here: str  # the desk of the scanning device's exit point
    created_at: datetime  # when the form was issued
    updated_at: datetime  # for a form at the desk: when its check was opened or last moved
    listened: bool  # a webhook of its shop or intermediary hears of its status changes


# Tables, not the ORM classes: a plain Core statement skips the ORM's
# per-execution work.
_F, _LINES, _SHOP, _PAYER = (Form.__table__, FormLine.__table__, Retailer.__table__,
                             Intermediary.__table__)
_RECENT, _HERE = Form.__table__.alias("recent"), ExitPoint.__table__.alias("here")
_FACT_COLUMNS = (
    _F.c.id, _F.c.status, _F.c.export_deadline, _F.c.total_cents, _F.c.vat_cents,
    _F.c.refund_cents, _F.c.validated_total_cents, _F.c.exit_point_id, _F.c.passport_key,
    _F.c.passport_country, _F.c.date_of_birth, _SHOP.c.vat_number, func.coalesce(_PAYER.c.name, _SHOP.c.name),
    # Category names are identifiers (shared.rules.CATEGORIES): no comma in any.
    select(func.aggregate_strings(_LINES.c.category, literal_column("','")))
    .where(_LINES.c.form_id == _F.c.id).scalar_subquery(),
    select(func.count()).select_from(_RECENT)
    .where(_RECENT.c.passport_key == _F.c.passport_key, _RECENT.c.created_at >= bindparam("since"))
    .scalar_subquery(),
    _HERE.c.desk_location, _F.c.created_at, _F.c.updated_at, webhooks.listened(),
)
_FORM_AND_PAYER = _F.join(_SHOP, _F.c.retailer_id == _SHOP.c.id).outerjoin(
    _PAYER, _SHOP.c.intermediary_id == _PAYER.c.id)
_FACTS = HotStatement(
    select(*_FACT_COLUMNS)
    .select_from(_FORM_AND_PAYER)
    .outerjoin(_HERE, _HERE.c.id == bindparam("here"))
    .where(_F.c.id == bindparam("form_id"))
)
# A device's live scan: the device's row (to authenticate it) with the
# form's facts. The device's row leads, so a known device always gets a
# row back; the form's columns are null when no form has the id.
_DEVICE_AND_FACTS = HotStatement(
    select(*auth.device_columns(_HERE), *_FACT_COLUMNS)
    .select_from(auth.device_and_exit_point(_HERE).outerjoin(_FORM_AND_PAYER, _F.c.id == bindparam("form_id")))
    .where(Device.__table__.c.id == bindparam("device_id"))
)


def _form_facts(session: Session, form_id: str, device: Principal | auth.UnreadDevice, ctx: ScanContext,
                now: datetime) -> tuple[Principal, FormFacts | None]:
    """The form's facts, and the device authenticated by its row when it
    was not yet (read in the same statement)."""
    # The risk engine counts the traveller's forms of the last days, this one included.
    params = {"form_id": form_id, "since": now - timedelta(days=ctx.policy.frequent_days)}
    if isinstance(device, auth.UnreadDevice):
        device, row = device.check_leading(
            _DEVICE_AND_FACTS.execute(session, {**params, "device_id": device.id}).fetchone())
        if row[0] is None:
            return device, None
    else:
        row = _FACTS.execute(session, {**params, "here": device.exit_point_id}).fetchone()
        if row is None:
            return device, None
    (id_, status, deadline, total, vat, refund, validated_total, exit_point_id, passport_key,
     passport_country, date_of_birth, retailer_vat, payer, categories, recent, desk, created_at, updated_at,
     listened) = row
    if not listened:
        # The outbox need not look again for this form's events.
        webhooks.nobody_listens(session, id_)
    return device, FormFacts(id_, status, deadline, total, vat, refund, validated_total, exit_point_id,
                             passport_key, passport_country, date_of_birth, retailer_vat, payer,
                             frozenset(categories.split(",")) if categories else frozenset(), recent, desk or "",
                             created_at, updated_at, listened)


def verdict_of(form: FormFacts, device: Principal) -> ScanOutcome:
    """The verdict a form's current status stands for, seen from ``device``'s
    exit point."""
    deadline = form.export_deadline.isoformat()
    if form.status in ("validated", "partially_validated", "refunded"):
        if form.exit_point_id not in (None, device.exit_point_id):
            return _refused("validated_elsewhere", form)
        partial = form.status == "partially_validated" or (
            form.validated_total_cents is not None and form.validated_total_cents < form.total_cents
        )
        return ScanOutcome(
            VALIDATED,
            "partially_validated" if partial else None,
            ("Export validated for the goods you showed. " if partial else "Export validated. ")
            + f"Your refund will be paid by {form.payer}.",
            form_id=form.id,
            export_deadline=deadline,
            payer=form.payer,
        )
    if form.status == "check_required":
        # The desk where the traveller is now, even if the check was opened
        # at another exit point.
        desk = form.desk_here
        return ScanOutcome(
            CHECK_REQUIRED,
            "selected_for_check",
            "Go to the customs desk with your goods, passport and this form."
            + (f" The desk is at: {desk}." if desk else ""),
            form_id=form.id,
            export_deadline=deadline,
            desk_location=desk or None,
        )
    if form.status == "cancelled":
        return _refused("form_cancelled", form)
    if form.status == "expired":
        return _refused("deadline_passed", form)
    if form.status == "rejected":
        return _refused("rejected_at_check", form)
    raise ValueError(f"no verdict for status {form.status}")


def _awaits_verdict(form: FormFacts, now: datetime, at: datetime, ctx: ScanContext) -> bool:
    """An issued form; or one expired meanwhile that an offline device
    scanned (``at``, earlier than now) before its deadline ended: the goods
    left in time. A live scan never revives an expired form, nor does any
    scan revive one that expired waiting at the desk (it has an exit point):
    customs wanted to see its goods and nobody did."""
    return form.status == "issued" or (
        form.status == "expired" and at < now and form.exit_point_id is None
        and not rules.is_expired(form.export_deadline, at, ctx.ruleset.timezone)
    )


# The compare-and-set that takes a form out of the status it was read in,
# one statement per outcome, built once; plain Core, no ORM objects
# (``_change`` keeps a Form the session holds in step).
_STILL = (_F.c.id == bindparam("form_id")) & (_F.c.status == bindparam("was"))
_EXPIRE = _F.update().where(_STILL).values(status="expired", updated_at=bindparam("updated_at"))
_VALIDATE = _F.update().where(_STILL).values(
    status="validated", exit_point_id=bindparam("exit_point_id"), updated_at=bindparam("updated_at"),
    validated_at=bindparam("validated_at"), validated_total_cents=bindparam("validated_total_cents"),
    validated_vat_cents=bindparam("validated_vat_cents"),
    validated_refund_cents=bindparam("validated_refund_cents"),
)
_SEND_TO_DESK = _F.update().where(_STILL).values(
    status="check_required", exit_point_id=bindparam("exit_point_id"), updated_at=bindparam("updated_at"))


@dataclass
class _Change:
    """A form's change from the status it was read in: one of the statements
    above with its values, and the event it stands for."""

    statement: object
    values: dict
    event: str
    data: dict
    check: list | None = None  # the fired rules of a check to open at the desk


def _decide_issued(form: FormFacts, device: Principal, ctx: ScanContext, now: datetime,
                   at: datetime) -> _Change:
    """The verdict of a form awaiting it, as the change that gives it. ``at``
    is when the traveller scanned."""
    if rules.is_expired(form.export_deadline, at, ctx.ruleset.timezone):
        return _Change(_EXPIRE, {"status": "expired", "updated_at": now}, "form.expired", {})
    facts = risk.ScanFacts(
        form_id=form.id,
        total_cents=form.total_cents,
        categories=form.categories,
        retailer_vat=form.retailer_vat,
        traveller_key=form.passport_key,
        passport_country=form.passport_country,
        forms_by_traveller_recent=form.forms_by_traveller_recent,
        app=ctx.app,
    )
    assessment = risk.assess(facts, ctx.policy, ctx.sampling_key)
    fired = [{"code": r.code, "detail": r.detail} for r in assessment.fired]
    common = {"exit_point_id": device.exit_point_id, "updated_at": now}
    if assessment.verdict == risk.VALIDATED:
        values = dict(
            common,
            status="validated",
            validated_at=at,
            validated_total_cents=form.total_cents,
            validated_vat_cents=form.vat_cents,
            validated_refund_cents=form.refund_cents,
        )
        return _Change(_VALIDATE, values, "form.validated", {"by": "scan", "channel": channel_of(device)})
    return _Change(_SEND_TO_DESK, dict(common, status="check_required"), "form.check_required",
                   {"fired_rules": fired, "channel": channel_of(device)}, check=fired)


def _apply(form: FormFacts, change: _Change) -> FormFacts:
    """The facts as ``change`` leaves the form (the form itself is written
    with the scan row, ``_record``)."""
    return replace(form, status=change.values["status"],
                   exit_point_id=change.values.get("exit_point_id", form.exit_point_id),
                   validated_total_cents=change.values.get("validated_total_cents", form.validated_total_cents))


def _as_listeners_read(change: _Change, device: Principal) -> dict:
    """What ``change`` writes, named as the outbox reads a form
    (``webhooks.read_before_write``): the exit point by its code."""
    if "exit_point_id" in change.values:
        return {**change.values, "exit_point": device.exit_point_code}
    return change.values


def _changed(session: Session, form: FormFacts, change: _Change, device: Principal, now: datetime) -> None:
    """``change`` won: a check it opens is added, and a Form the session
    already holds (one issued in the same session, say) shows what was
    written without reading the form back."""
    if change.check is not None:
        session.add(Check(form_id=form.id, exit_point_id=device.exit_point_id, fired_rules=change.check,
                          opened_at=now))
    loaded = held(session, Form, form.id)
    if loaded is not None:
        for name, value in change.values.items():
            set_committed_value(loaded, name, value)


def scan(
    session: Session,
    device: Principal | auth.UnreadDevice,
    qr_payload: str,
    ctx: ScanContext,
    now: datetime,
    scanned_at: datetime | None = None,
    *,
    queued: bool = False,
    ends: bool = False,
) -> ScanOutcome:
    """Judge one scanned QR payload at ``device``'s exit point and record the scan.

    ``queued``: the device made the scan offline at ``scanned_at`` and sends
    it now; the export happened then, so the deadline is judged at that
    moment (within the limits of :func:`_replay_time`). A live scan is
    dated ``now`` whatever ``scanned_at`` says.

    A device not yet authenticated (``auth.UnreadDevice``) is, before
    anything is read or written for it: with the form's facts, or on its
    own where there are none to read.

    ``ends``: the caller writes nothing after the scan in the session's
    transaction, which may then be committed with the scan's own write
    (``audit.record_pair_after``): the caller's commit then has nothing
    left to do.
    """
    at = now
    if queued:
        device = _authenticated(session, device)
        at = _replay_time(session, device, scanned_at, now)
    try:
        claims = qrtoken.verify_form_token(qr_payload, ctx.keys, at)
        form_id = claims.form_id
    except qrtoken.TokenRefused as refusal:
        if refusal.claims is None:
            return _record(session, _authenticated(session, device), _refused(refusal.reason_code), None,
                           now, at, queued, answer=ctx.answer)
        # Genuine but past its deadline: the form itself must say so too.
        form_id = refusal.claims.form_id
    # One form a request: its verdict is the transaction's last write.
    return _judge(session, device, form_id, ctx, now, at, queued, last=True, ends=ends)


def scan_passport(
    session: Session,
    device: Principal,
    passport_key: str,
    ctx: ScanContext,
    now: datetime,
    scanned_at: datetime | None = None,
    *,
    queued: bool = False,
) -> list[ScanOutcome]:
    """Judge every open form of the traveller whose passport was read, as if
    each form's QR code had been scanned (oldest form first). A queued
    passport scan judges the forms that existed when it was made."""
    at = _replay_time(session, device, scanned_at, now) if queued else now
    open_forms = session.scalars(
        select(Form.id)
        .where(Form.passport_key == passport_key, Form.status.in_(("issued", "check_required")),
               Form.created_at <= (at + CLOCK_SKEW if queued else at))
        .order_by(Form.created_at, Form.id)
    ).all()
    return [_judge(session, device, form_id, ctx, now, at, queued) for form_id in open_forms]


# How far back an offline device may date a scan, and how far ahead its
# clock may run.
MAX_OFFLINE = timedelta(days=14)
CLOCK_SKEW = timedelta(minutes=5)

_SCANS, _DEVICES = Scan.__table__, Device.__table__
# When the API last heard from the device live: its newest live scan (the
# partial index ix_scans_device_live), or its pairing.
_LAST_CONTACT = select(func.coalesce(
    select(func.max(_SCANS.c.received_at))
    .where(_SCANS.c.device_id == bindparam("device_id"), ~_SCANS.c.queued).scalar_subquery(),
    _DEVICES.c.created_at,
)).where(_DEVICES.c.id == bindparam("device_id"))


def _replay_time(session: Session, device: Principal, scanned_at: datetime | None,
                 now: datetime) -> datetime:
    """When a queued scan was made, if the device's word for it can be
    taken: within MAX_OFFLINE, not in the future, and not before the last
    live scan the API had from the device. A device that was online then
    would have sent the scan live; a device sends its whole queue before it
    scans live again, so a genuine replay is never older than that."""
    if scanned_at is None:
        raise Problem(422, "invalid_request", "A queued scan says when it was made.",
                      errors={"scanned_at": ["Required when queued is true."]})
    if not now - MAX_OFFLINE <= scanned_at <= now + CLOCK_SKEW:
        raise Problem(422, "invalid_request", "scanned_at is too far from the current time.",
                      errors={"scanned_at": ["Must be within the last 14 days and not in the future."]})
    last_contact = session.execute(_LAST_CONTACT, {"device_id": device.id}).scalar_one()
    if scanned_at < last_contact - CLOCK_SKEW:
        raise Problem(422, "scanned_before_last_contact",
                      "This device was online after the time this queued scan claims; "
                      "it cannot have been made offline then.",
                      errors={"scanned_at": ["Before the device's last live scan."]})
    return min(scanned_at, now)


def _authenticated(session: Session, device: Principal | auth.UnreadDevice) -> Principal:
    return device.read(session) if isinstance(device, auth.UnreadDevice) else device


def _judge(session: Session, device: Principal | auth.UnreadDevice, form_id: str, ctx: ScanContext,
           now: datetime, at: datetime, queued: bool,
           owned: Callable[[FormFacts], bool] | None = None, *, last: bool = False,
           ends: bool = False) -> ScanOutcome | None:
    """The verdict on ``form_id``, recorded with its scan. With ``owned``,
    None for a form it refuses, and nothing recorded. ``last``: the
    transaction writes no other form before it commits; ``ends``: nothing
    at all after this verdict (``audit.record_pair_after``)."""
    for _attempt in range(3):
        device, form = _form_facts(session, form_id, device, ctx, now)
        if owned is not None and (form is None or not owned(form)):
            return None
        if form is None:
            return _record(session, device, _refused("form_not_found", form_id=form_id), None, now, at, queued,
                           answer=ctx.answer)
        if queued and at < form.created_at:
            # Devices date scans to the second, by a clock that may be a
            # little behind ours: within that, the scan followed the issue.
            if at < form.created_at - CLOCK_SKEW:
                raise Problem(422, "scanned_before_issue",
                              "This queued scan claims a time before the form was issued.",
                              errors={"scanned_at": ["Before the form was issued."]})
            at = form.created_at
        if _awaits_verdict(form, now, at, ctx):
            # The verdict, and the scan that gave it: written together, if
            # the form is still as read.
            change = _decide_issued(form, device, ctx, now, at)
            outcome = verdict_of(_apply(form, change), device)
            if form.listened:
                webhooks.read_before_write(session, form.id, change.event, _as_listeners_read(change, device))
            # A check the verdict opens is written after it.
            if _record(session, device, outcome, form, now, at, queued, change, last=last,
                       ends=ends and change.check is None, answer=ctx.answer) is not None:
                _changed(session, form, change, device, now)
                return outcome
        elif _check_follows_traveller(session, form, device, now, at):
            return _record(session, device, verdict_of(form, device), form, now, at, queued, last=last,
                           ends=ends, answer=ctx.answer)
        session.rollback()  # another device or an officer changed it first: read it again
    raise RuntimeError("form status kept changing during a scan")


# Moving a check: the check first, then the form, the order in which a
# decision takes them (so the two never wait on each other's locks). Each
# only as read: pending and still at the exit point it was at.
_CHECKS = Check.__table__
_MOVE_CHECK = _CHECKS.update().where(
    (_CHECKS.c.form_id == bindparam("moving")) & (_CHECKS.c.status == "pending")
    & (_CHECKS.c.exit_point_id == bindparam("was"))
).values(exit_point_id=bindparam("here"))
_MOVE_FORM = _F.update().where(
    (_F.c.id == bindparam("moving")) & (_F.c.status == "check_required") & (_F.c.exit_point_id == bindparam("was"))
).values(exit_point_id=bindparam("here"), updated_at=bindparam("moved_at"))
_EXIT_POINT_CODE = select(ExitPoint.__table__.c.code).where(ExitPoint.__table__.c.id == bindparam("id"))


def _check_follows_traveller(session: Session, form: FormFacts, device: Principal, now: datetime,
                             at: datetime) -> bool:
    """A form waiting at another exit point's desk, scanned here: the
    traveller is here now and the verdict sends them to this desk, so the
    check moves to this desk's queue. Not for a scan an offline device made
    before the check was opened or last moved (the traveller has moved on
    since). False if another request moved or decided the check first."""
    if form.status != "check_required" or form.exit_point_id in (None, device.exit_point_id) \
            or at < form.updated_at:
        return True
    if not move_check(session, form.id, form.exit_point_id, device, now):
        return False
    form.exit_point_id = device.exit_point_id
    return True


def move_check(session: Session, form_id: str, was: int, here: Principal, now: datetime) -> bool:
    """Move the pending check of a form waiting at exit point ``was`` to
    the exit point ``here`` stands at (a kiosk, the traveller's app, an
    officer at the desk), with a form.check_moved event. False if another
    request moved or decided it first (the caller rolls back)."""
    moving = {"moving": form_id, "was": was, "here": here.exit_point_id}
    if session.execute(_MOVE_CHECK, moving).rowcount != 1 or \
            session.execute(_MOVE_FORM, {**moving, "moved_at": now}).rowcount != 1:
        return False
    came_from = session.execute(_EXIT_POINT_CODE, {"id": was}).scalar_one()
    loaded = held(session, Form, form_id)
    if loaded is not None:
        set_committed_value(loaded, "exit_point_id", here.exit_point_id)
        set_committed_value(loaded, "updated_at", now)
    audit.record(session, form_id, "form.check_moved", here.actor, at=now,
                 exit_point=here.exit_point_code, from_exit_point=came_from)
    return True


# Every column by name, so that the statement also works as a WITH clause
# of its event's INSERT (api/services/audit.record_after).
_INSERT_SCAN = _SCANS.insert().values({name: bindparam(name) for name in (
    "form_id", "device_id", "exit_point_id", "verdict", "reason_code", "created_at", "channel", "install_key",
    "received_at", "queued")})


def _record(session: Session, device: Principal, outcome: ScanOutcome, form: FormFacts | None,
            now: datetime, at: datetime, queued: bool, change: _Change | None = None, *,
            last: bool = False, ends: bool = False,
            answer: Callable[[ScanOutcome], None] | None = None) -> ScanOutcome | None:
    """Record the scan that gave ``outcome``, with its event; with
    ``change``, the form's change too, and only if the form is still in the
    status it was read in (None if another request changed it first).
    ``answer`` (``ScanContext.answer``) is told ``outcome`` first; ``last``
    and ``ends`` as for ``audit.record_pair_after``."""
    if answer is not None:
        answer(outcome)
    channel = channel_of(device)
    # Nothing reads the row back: a plain INSERT, no ORM object.
    row = {
        "form_id": form.id if form is not None else None,
        "device_id": device.id if device.kind == "device" else None,
        "exit_point_id": device.exit_point_id,
        "verdict": outcome.verdict,
        "reason_code": outcome.reason_code,
        "created_at": at,
        "channel": channel,
        "install_key": device.install_key,
        "received_at": now,
        "queued": queued,
    }
    if form is None:
        session.execute(_INSERT_SCAN, row)
        return outcome
    # The event's time is when the API received the scan; a queued one
    # also says when the device made it.
    offline = {"scanned_at": at.isoformat(), "queued": True} if queued else {}
    scanned = {"verdict": outcome.verdict, "reason_code": outcome.reason_code, "channel": channel, **offline}
    if change is None:
        audit.record_after(session, _INSERT_SCAN, row, form.id, "form.scanned", device.actor, at=now,
                           exit_point=device.exit_point_code, last=last, ends=ends, **scanned)
        return outcome
    event = {"form_id": form.id, "actor": device.actor, "at": now, "exit_point": device.exit_point_code}
    if audit.record_pair_after(
            session, change.statement, {"form_id": form.id, "was": form.status, **change.values},
            {**event, "type": change.event, "data": change.data},
            _INSERT_SCAN, row, {**event, "type": "form.scanned", "data": scanned}, last=last, ends=ends) is None:
        return None
    return outcome


# --- the traveller's app ------------------------------------------------------------
# The app names its forms by id (it listed them); the traveller is the
# principal (kind "traveller"), placed at the exit point being validated at.

def judge_form(session: Session, traveller: Principal, form_id: str, ctx: ScanContext,
               now: datetime, owned: Callable[[FormFacts], bool], *, last: bool = False) -> ScanOutcome | None:
    """Judge one of the traveller's forms as if its QR code had been scanned
    at ``traveller``'s exit point now: the same compare-and-set, audit trail
    and webhooks as a kiosk scan, on channel "app". None, and nothing
    recorded, if there is no such form or ``owned`` says it is not theirs
    (read in the statement that reads the form's facts). ``last``: the
    request judges no other form (``_judge``)."""
    return _judge(session, traveller, form_id, ctx, now, now, False, owned, last=last)


@dataclass
class _FormRef:
    id: str


def refuse_form(session: Session, traveller: Principal, form_id: str | None, reason_code: str,
                message: str, now: datetime, export_deadline: date | None = None) -> ScanOutcome:
    """Record a refusal that leaves the form as it is: the traveller may not
    validate from here and now (wrong place, wrong day), but may later."""
    outcome = ScanOutcome(REFUSED, reason_code, message, form_id=form_id,
                          export_deadline=export_deadline.isoformat() if export_deadline else None)
    return _record(session, traveller, outcome, _FormRef(form_id) if form_id else None, now, now, False)
