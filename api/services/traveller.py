"""The traveller's own phone: signing in with the passport, their forms,
and validating the export with proof of being at the exit point.

A phone is not a kiosk. A kiosk sits in a fixed place with a managed key; a
phone says where it is, and may lie. So the app's evidence (GPS, the tokens
of the Bluetooth sensor posts opposite the desks, the phone's history) is
weighed (``shared.presence``, the app rules of ``shared.risk``): weak or
contradictory evidence sends the traveller to the desk, never to a green
result. When nothing places the phone at the exit point at all, or the trip
says this is not the place or the day, the forms are left as they are and
the traveller is told why (refused, the form untouched).

Sign-in answers the same whether or not the passport has forms and whether
or not the date of birth is right: the token simply sees the forms that
match passport *and* date of birth, so guessing reveals nothing, and the
limits per address and per passport stop guessing anyway.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, selectinload

from shared import bcbp, formid, presence, risk, rules
from shared.airports import UnknownAirport
from shared.countries import is_eu

from .. import auth
from ..auth import Principal
from ..database import HotStatement
from ..models import AppInstall, Check, ExitPoint, Form, Retailer, Sailing, Scan, utcnow
from ..problems import Problem
from . import audit, exit_point_presence, forms, scans, throttle
from .exit_point_presence import Place

OPEN = ("issued", "check_required")
DECIDED = ("validated", "partially_validated", "rejected", "refunded")
# The app's "Afterwards" list: forms decided this many days ago at most.
AFTERWARDS_DAYS = 90
MAX_FORMS_PER_VALIDATION = 50


# --- keyed hashes: what tokens and tables hold instead of personal data ------------------

def _mac(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def birth_key(secret: bytes, passport_key: str, date_of_birth: date) -> str:
    """Names a passport *and* its holder's date of birth."""
    return _mac(secret, f"birth:{passport_key}:{date_of_birth.isoformat()}")


def install_key(secret: bytes, install_id: str) -> str:
    """Names an app install without keeping the id the phone made up."""
    return _mac(secret, f"install:{install_id.strip().lower()}")


# --- signing in --------------------------------------------------------------------------

def sign_in(session: Session, config, body: dict, address: str | None, now: datetime) -> tuple[str, int]:
    """A traveller token for the passport in ``body``; the same answer for
    every passport, with or without forms, right date of birth or not."""
    secret = config["PASSPORT_HASH_KEY"].encode()
    passport = forms.passport_key(secret, body["passport_country"], body["passport_number"])
    # Per address first: a guesser spreading over passports meets it; per
    # passport (its keyed hash, never the number) a guesser of one
    # passport's date of birth spreading over addresses.
    throttle.hit(session, f"traveller-ip:{address}", config["TRAVELLER_SIGNINS_PER_ADDRESS_PER_MINUTE"], 60, now)
    throttle.hit(session, f"traveller-passport:{passport}", config["TRAVELLER_SIGNINS_PER_PASSPORT_PER_HOUR"],
                 3600, now)
    install = install_key(secret, body["install_id"])
    _note_install(session, install, now)
    session.commit()
    return auth.issue_traveller_token(passport, birth_key(secret, passport, body["date_of_birth"]), install)


def _note_install(session: Session, install: str, now: datetime) -> None:
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    session.execute(insert(AppInstall).values(install_key=install, first_seen_at=now)
                    .on_conflict_do_nothing(index_elements=[AppInstall.install_key]))


# --- the traveller's forms ----------------------------------------------------------------

def _theirs(form_passport_key: str | None, form_birth: date | None, traveller: Principal, secret: bytes) -> bool:
    return (form_passport_key == traveller.passport_key and form_birth is not None
            and hmac.compare_digest(birth_key(secret, form_passport_key, form_birth), traveller.birth_key))


def forms_of(session: Session, traveller: Principal, secret: bytes, now: datetime) -> list[Form]:
    """Open forms, and forms decided in the last 90 days, newest first."""
    since = now - timedelta(days=AFTERWARDS_DAYS)
    query = (
        select(Form)
        .where(Form.passport_key == traveller.passport_key,
               or_(Form.status.in_(OPEN), and_(Form.status.in_(DECIDED), Form.updated_at >= since)))
        .options(selectinload(Form.lines), joinedload(Form.retailer).joinedload(Retailer.intermediary),
                 joinedload(Form.exit_point))
        .order_by(Form.created_at.desc(), Form.id)
        .limit(200)
    )
    return [f for f in session.scalars(query).unique() if _theirs(f.passport_key, f.date_of_birth, traveller, secret)]


def claim(session: Session, traveller: Principal, secret: bytes, qr_payload: str, keys) -> Form:
    """The form whose QR code the traveller scanned, if it is theirs."""
    from shared import qrtoken

    try:
        form_id = qrtoken.verify_form_token(qr_payload, keys).form_id
    except qrtoken.TokenRefused as refusal:
        if refusal.claims is None:
            raise Problem(422, refusal.reason_code, scans.REFUSALS.get(refusal.reason_code, refusal.message))
        form_id = refusal.claims.form_id  # genuine, past its deadline: still theirs to see
    form = session.get(Form, form_id)
    if form is None:
        raise Problem(404, "form_not_found", scans.REFUSALS["form_not_found"])
    if not _theirs(form.passport_key, form.date_of_birth, traveller, secret):
        raise Problem(422, "passport_mismatch",
                      "This form is registered to another passport: ask the shop to correct the passport number.")
    return form


# --- trips -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TripRefusal:
    reason_code: str
    message: str


def _day_name(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def judge_flight(boarding_pass: str, exit_point: str, now: datetime, tz: str) -> TripRefusal | None:
    """Whether a traveller with this boarding pass may validate at airport
    ``exit_point`` now: their flight from here leaves the EU, today (the
    member state's calendar day). Raises a 422 problem for a pass that
    cannot be read."""
    try:
        boarding = bcbp.parse(boarding_pass)
        leg = boarding.leg_from(exit_point)
        leaves = bcbp.is_last_eu_exit(leg.destination)
    except (bcbp.BcbpError, UnknownAirport) as exc:
        raise Problem(422, "invalid_boarding_pass", f"The boarding pass could not be read: {exc}.",
                      errors={"trip.boarding_pass": [str(exc)]})
    last = boarding.last_eu_exit()
    where = bcbp.destination_name(last) if last else None
    if leg.origin != exit_point.upper():
        return TripRefusal("wrong_exit_point",
                           f"This boarding pass is for a flight from {bcbp.destination_name(leg.origin)}, "
                           f"not from {exit_point}." + (f" Validate at {where}." if where else ""))
    if not leaves:
        # A transfer: the traveller leaves the EU from another airport.
        return TripRefusal("not_last_eu_exit",
                           f"Your flight to {bcbp.destination_name(leg.destination)} stays inside the EU, so "
                           f"this is not your last EU airport. "
                           + (f"Validate at {where}, where you leave the EU." if where
                              else "Validate where you leave the EU."))
    today = rules.local_today(now, tz)
    departs = leg.flight_date(today)
    if departs != today:
        return TripRefusal("not_departing_today",
                           f"Your flight {leg.flight} leaves on {_day_name(departs)}, not today: "
                           "validate on the day you leave.")
    return None


def judge_sailing(sailing: Sailing | None, exit_point: ExitPoint | Place, now: datetime, tz: str,
                  hours_before: float) -> TripRefusal | None:
    """Whether a ferry traveller on ``sailing`` may validate at ``exit_point``
    now: the sailing leaves from here, outside the EU, today, within
    ``hours_before`` hours."""
    if sailing is None:
        raise Problem(422, "sailing_not_found", "No such sailing: pick today's sailing from the list.",
                      errors={"trip.sailing": ["Unknown sailing."]})
    zone = ZoneInfo(tz)
    if sailing.exit_point_id != exit_point.id:
        return TripRefusal("wrong_exit_point",
                           f"This sailing leaves from {sailing.exit_point.name}, not from {exit_point.name}: "
                           "validate there.")
    if is_eu(sailing.destination_country):
        return TripRefusal("not_last_eu_exit",
                           f"The ferry to {sailing.destination_port} stays inside the EU: validate where you "
                           "leave the EU.")
    today = rules.local_today(now, tz)
    departs_local = sailing.departs_at.astimezone(zone)
    if departs_local.date() != today:
        return TripRefusal("not_departing_today",
                           f"Your sailing leaves on {_day_name(departs_local.date())}, not today: "
                           "validate on the day you leave.")
    if now > sailing.departs_at:
        return TripRefusal("sailing_departed", f"The {departs_local:%H:%M} sailing has left.")
    opens = sailing.departs_at - timedelta(hours=hours_before)
    if now < opens:
        return TripRefusal("too_early",
                           f"You can validate from {opens.astimezone(zone):%H:%M}, "
                           f"{hours_before:g} hours before your sailing.")
    return None


def _judge_trip(session: Session, trip: dict | None, exit_point: Place, config, now: datetime
                ) -> TripRefusal | None:
    if trip is None:
        return None
    tz = config["RULESET"].timezone
    if trip["kind"] == "flight":
        if exit_point.kind != "airport":
            return TripRefusal("wrong_exit_point", f"{exit_point.name} is not an airport: validate where you fly from.")
        return judge_flight(trip["boarding_pass"], exit_point.code, now, tz)
    if exit_point.kind != "seaport":
        return TripRefusal("wrong_exit_point", f"{exit_point.name} is not a seaport: validate where your ferry leaves.")
    return judge_sailing(session.get(Sailing, trip["sailing"]), exit_point, now, tz,
                         config["APP_HOURS_BEFORE_SAILING"])


# --- validating --------------------------------------------------------------------------

NOT_HERE = ("Open the app inside the validation zone at the exit point, opposite the customs desk, "
            "with Bluetooth and location on.")


def _evidence(data: dict) -> presence.Evidence:
    gps = data.get("gps")
    return presence.Evidence(
        install_id=data["install_id"],
        gps=presence.GpsFix(gps["lat"], gps["lon"], gps["accuracy_m"], gps["mock"], gps["at"]) if gps else None,
        beacons=tuple(presence.Sighting(b["post_id"], b["token"], b["seen_at"], b.get("rssi"))
                      for b in data.get("beacons") or []),
    )


# What the risk engine weighs of the phone, in one statement: how long ago
# the install first signed in, and how many other passports it validated
# forms of lately.
_INSTALLS, _SCANS, _FORMS = AppInstall.__table__, Scan.__table__, Form.__table__
_APP_FACTS = HotStatement(select(
    select(_INSTALLS.c.first_seen_at).where(_INSTALLS.c.install_key == bindparam("install_key"))
    .scalar_subquery(),
    select(func.count(func.distinct(_FORMS.c.passport_key)))
    .select_from(_SCANS.join(_FORMS, _SCANS.c.form_id == _FORMS.c.id))
    .where(_SCANS.c.install_key == bindparam("install_key"), _SCANS.c.channel == "app",
           _SCANS.c.created_at >= bindparam("since", type_=_SCANS.c.created_at.type),
           _FORMS.c.passport_key != bindparam("passport_key"))
    .scalar_subquery(),
))


def _app_facts(session: Session, traveller: Principal, report: presence.PresenceReport,
               policy: risk.RiskPolicy, now: datetime) -> risk.AppFacts:
    first_seen, others = _APP_FACTS.execute(session, {
        "install_key": traveller.install_key, "passport_key": traveller.passport_key,
        "since": now - timedelta(minutes=policy.app_passports_window_minutes)}).fetchone()
    age = (now - first_seen).total_seconds() / 60 if first_seen is not None else 0.0
    return risk.AppFacts(presence=report, install_age_minutes=age, other_passports_recent=others or 0)


def reference(secret: bytes, form_id: str, exit_point: str) -> str:
    """A short code to show with a validated form (the same on every
    request): "AMS-3F9K2Q"."""
    digest = hmac.new(secret, f"validated:{form_id}:{exit_point}".encode(), hashlib.sha256).digest()
    return f"{exit_point}-{base64.b32encode(digest).decode()[:6]}"


def validate(session: Session, traveller: Principal, body: dict, config, keys, now: datetime) -> dict:
    """Judge the traveller's forms at the exit point in ``body`` with the
    evidence the phone sent. Does not commit."""
    secret = config["PASSPORT_HASH_KEY"].encode()
    exit_point = exit_point_presence.place(session, body["exit_point"])
    evidence = _evidence(body["evidence"])
    if not hmac.compare_digest(install_key(secret, evidence.install_id), traveller.install_key):
        raise Problem(422, "install_mismatch", "The evidence comes from another app install than the sign-in.",
                      errors={"evidence.install_id": ["Not the install that signed in."]})
    here = dataclasses.replace(traveller, exit_point_id=exit_point.id, exit_point_code=exit_point.code)
    refusal = _judge_trip(session, body.get("trip"), exit_point, config, now)
    report = None
    if refusal is None:
        zones = list(exit_point.zones)
        posts = exit_point_presence.posts_named(session, [b.post_id for b in evidence.beacons])
        report = presence.judge(evidence, exit_point.code, zones, posts, config["PRESENCE"], now)
        if not report.here:
            refusal = TripRefusal("not_at_exit_point", f"You are not at {exit_point.name} yet. " + NOT_HERE)
    ctx = scans.ScanContext(config["RULESET"], config["RISK"], keys, config["RISK_SAMPLING_KEY"].encode(),
                            app=_app_facts(session, here, report, config["RISK"], now) if report else None)

    def owned(form) -> bool:
        return _theirs(form.passport_key, form.date_of_birth, traveller, secret)

    items = []
    form_ids = list(dict.fromkeys(formid.normalize_form_id(f) for f in body["form_ids"]))
    for form_id in form_ids:
        if refusal is None:
            # Whose the form is, read with the facts the verdict needs. A
            # lone form's verdict locks no other row before the commit (the
            # rows still to come are new: a check, an outbox delivery, the
            # idempotency record), so it takes its numbers as a kiosk's scan does.
            outcome = scans.judge_form(session, here, form_id, ctx, now, owned, last=len(form_ids) == 1)
        else:
            owner = session.execute(select(Form.passport_key, Form.date_of_birth, Form.export_deadline)
                                    .where(Form.id == form_id)).one_or_none()
            outcome = (scans.refuse_form(session, here, form_id, refusal.reason_code, refusal.message, now,
                                         owner[2])
                       if owner is not None and _theirs(owner[0], owner[1], traveller, secret) else None)
        if outcome is None:
            # Another passport's form looks exactly like no form at all.
            outcome = scans.ScanOutcome(scans.REFUSED, "form_not_found", scans.REFUSALS["form_not_found"],
                                        form_id=form_id)
        items.append({
            "form_id": outcome.form_id, "verdict": outcome.verdict, "reason_code": outcome.reason_code,
            "message": outcome.message,
            "reference": reference(secret, form_id, exit_point.code) if outcome.verdict == scans.VALIDATED else None,
            "desk_location": outcome.desk_location if outcome.verdict == scans.CHECK_REQUIRED else None,
            "export_deadline": outcome.export_deadline,
        })
    desk_pass = None
    if any(i["verdict"] == scans.CHECK_REQUIRED for i in items):
        desk_pass = auth.issue_desk_pass(traveller.passport_key, traveller.birth_key)[0]
    return {"items": items, "desk_pass": desk_pass}


# --- the desk: forms of a traveller who shows a desk pass ------------------------------------

def forms_for_desk(session: Session, desk_pass: str, secret: bytes) -> list[Form]:
    """The forms of the traveller whose desk pass the officer scanned: open
    ones first (those waiting for a check before those not yet validated),
    then the rest of the last 90 days."""
    passport, birth = auth.read_desk_pass(desk_pass)
    who = Principal(kind="traveller", id="", role=auth.TRAVELLER_ROLE, passport_key=passport, birth_key=birth)
    found = forms_of(session, who, secret, utcnow())
    order = {"check_required": 0, "issued": 1}
    return sorted(found, key=lambda f: (order.get(f.status, 2), f.created_at, f.id))


def checks_of(session: Session, form_ids: list[str]) -> dict[str, Check]:
    if not form_ids:
        return {}
    return {c.form_id: c for c in session.scalars(
        select(Check).where(Check.form_id.in_(form_ids)).options(joinedload(Check.exit_point)))}


def open_desk_check(session: Session, officer: Principal, form: Form, exit_point: ExitPoint,
                    tz: str, now: datetime) -> tuple[Check, bool]:
    """A check at ``exit_point``'s desk (where the officer is on duty) for a
    traveller who came straight to the desk (no kiosk, no app): the form
    leaves ``issued`` through the same compare-and-set as a scan, on channel
    "desk". Returns the check and whether it was opened now (False: the
    form already waited for one). A check waiting at another exit point's
    desk follows the traveller here, as it does when a kiosk or the app
    sends them to this desk (``scans.move_check``)."""
    at_desk = dataclasses.replace(officer, exit_point_id=exit_point.id, exit_point_code=exit_point.code)
    if form.status == "check_required":
        check = session.scalar(select(Check).where(Check.form_id == form.id))
        if check is not None and check.status == "pending":
            if check.exit_point_id != exit_point.id:
                if not scans.move_check(session, form.id, check.exit_point_id, at_desk, now):
                    raise Problem(409, "conflict", "Another request changed the form at the same moment; retry.")
                session.expire(check)
                session.refresh(form)
            return check, False
    if form.status != "issued":
        raise Problem(409, "form_not_open",
                      f"Form {form.id} is {form.status}: only an issued form can be checked at the desk.")
    if rules.is_expired(form.export_deadline, now, tz):
        raise Problem(409, "form_not_open", f"The export deadline of form {form.id} passed on "
                                            f"{form.export_deadline.isoformat()}.")
    fired = [{"code": "desk_walk_in", "detail": "The traveller came to the desk without a kiosk or app result."}]
    moved = session.execute(
        Form.__table__.update()
        .where(Form.__table__.c.id == form.id, Form.__table__.c.status == "issued")
        .values(status="check_required", exit_point_id=exit_point.id, updated_at=now)
    ).rowcount == 1
    if not moved:
        raise Problem(409, "conflict", "Another request changed the form at the same moment; retry.")
    check = Check(form_id=form.id, exit_point_id=exit_point.id, fired_rules=fired, opened_at=now)
    session.add(check)
    session.execute(Scan.__table__.insert(), {
        "form_id": form.id, "device_id": None, "exit_point_id": exit_point.id, "verdict": scans.CHECK_REQUIRED,
        "reason_code": "selected_for_check", "created_at": now, "channel": "desk", "install_key": None,
    })
    audit.record(session, form.id, "form.check_required", at_desk.actor, at=now, exit_point=exit_point.code,
                 fired_rules=fired, channel="desk")
    session.flush()
    session.refresh(form)
    return check, True
