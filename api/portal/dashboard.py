"""The customs supervisor dashboard: per exit point and day, how many
scans, how many validated / sent to the desk / refused, the desk's queue and
waiting times, and the risk rules that sent travellers to the desk; and the
device fleet: every kiosk, tablet and handheld, green, amber or red, and why.

For admins and officers. Figures come straight from the scans and checks
tables; charts are SVG drawn on the server (``charts``).
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import rules

from .. import database
from ..models import Check, ExitPoint, Scan, utcnow
from ..services import fleet as fleet_rules
from ..services import refused_replays
from . import charts, web
from .i18n import gettext as _
from .labels import fleet_reason, rule_label
from .web import login_required

blp = Blueprint("portal_dashboard", __name__, url_prefix="/dashboard")
web.protect(blp)

VERDICTS = ("validated", "check_required", "refused")
CHANNELS = ("kiosk", "app", "desk")


@dataclass
class ExitPointDay:
    """One exit point's day."""

    code: str
    name: str
    verdicts: Counter = field(default_factory=Counter)
    hourly: list[Counter] = field(default_factory=lambda: [Counter() for _ in range(24)])
    rules: Counter = field(default_factory=Counter)
    channels: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in CHANNELS})
    queue_now: int = 0
    longest_wait_now: timedelta | None = None
    waits: list[timedelta] = field(default_factory=list)  # checks decided that day

    @property
    def scans(self) -> int:
        return sum(self.verdicts.values())

    @property
    def median_wait(self) -> timedelta | None:
        return statistics.median(self.waits) if self.waits else None


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), zone).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(timezone.utc)
    return start, end


def day_report(session: Session, day: date, zone: ZoneInfo, now: datetime) -> list[ExitPointDay]:
    """Every exit point's figures for ``day`` (local), and the queue at ``now``."""
    points = session.scalars(select(ExitPoint).order_by(ExitPoint.code)).all()
    by_id = {p.id: ExitPointDay(p.code, p.name) for p in points}
    start, end = _day_bounds(day, zone)
    for exit_point_id, verdict, at, channel in session.execute(
        select(Scan.exit_point_id, Scan.verdict, Scan.created_at, Scan.channel)
        .where(Scan.created_at >= start, Scan.created_at < end)
    ):
        report = by_id.get(exit_point_id)
        if report is not None:
            report.verdicts[verdict] += 1
            report.hourly[at.astimezone(zone).hour][verdict] += 1
            report.channels[channel][verdict] += 1
    for exit_point_id, fired in session.execute(
        select(Check.exit_point_id, Check.fired_rules).where(Check.opened_at >= start, Check.opened_at < end)
    ):
        if exit_point_id in by_id:
            by_id[exit_point_id].rules.update(r.get("code", "?") for r in fired or [])
    for exit_point_id, opened, decided in session.execute(
        select(Check.exit_point_id, Check.opened_at, Check.decided_at)
        .where(Check.decided_at >= start, Check.decided_at < end)
    ):
        if exit_point_id in by_id:
            by_id[exit_point_id].waits.append(decided - opened)
    for exit_point_id, opened in session.execute(
        select(Check.exit_point_id, Check.opened_at).where(Check.status == "pending")
    ):
        report = by_id.get(exit_point_id)
        if report is not None:
            report.queue_now += 1
            wait = now - opened
            if report.longest_wait_now is None or wait > report.longest_wait_now:
                report.longest_wait_now = wait
    return list(by_id.values())


def combined(reports: list[ExitPointDay]) -> ExitPointDay:
    """All exit points together."""
    total = ExitPointDay("", _("All exit points"))
    for r in reports:
        total.verdicts.update(r.verdicts)
        for hour in range(24):
            total.hourly[hour].update(r.hourly[hour])
        total.rules.update(r.rules)
        for channel in CHANNELS:
            total.channels[channel].update(r.channels[channel])
        total.queue_now += r.queue_now
        total.waits.extend(r.waits)
        if r.longest_wait_now is not None and (
            total.longest_wait_now is None or r.longest_wait_now > total.longest_wait_now
        ):
            total.longest_wait_now = r.longest_wait_now
    return total


def duration(value: timedelta | None) -> str:
    """``1 h 05 min``, ``12 min``, ``< 1 min``; empty for None."""
    if value is None:
        return ""
    minutes = int(value.total_seconds() // 60)
    if minutes < 1:
        return _("< 1 min")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def channel_names() -> dict[str, str]:
    return {"kiosk": _("Kiosk"), "app": _("Traveller's app"), "desk": _("Customs desk")}


def verdict_names() -> dict[str, str]:
    return {"validated": _("Validated"), "check_required": _("To the desk"), "refused": _("Refused")}


@blp.get("")
@login_required("admin", "officer")
def dashboard():
    zone = ZoneInfo(current_app.config["RULESET"].timezone)
    now = utcnow()
    today = rules.local_today(now, zone)
    error = None
    try:
        day = date.fromisoformat(request.args.get("day") or today.isoformat())
    except ValueError:
        day, error = today, _("Enter a date like 2026-03-14.")
    reports = day_report(database.session(), day, zone, now)
    code = (request.args.get("exit_point") or "").upper()
    refused = refused_replays.since(database.session(), *_day_bounds(day, zone), exit_point=code or None)
    selected = next((r for r in reports if r.code == code), None)
    scope = selected or combined(reports)
    names = verdict_names()
    hourly = charts.stacked_columns(
        [f"{h:02d}" for h in range(24)],
        [(v, names[v], [scope.hourly[h][v] for h in range(24)]) for v in VERDICTS],
    )
    per_exit_point = charts.horizontal_bars(
        [(f"{r.code} {r.name}", [(v, names[v], r.verdicts[v]) for v in VERDICTS]) for r in reports],
        label_width=300,
    )
    top_rules = scope.rules.most_common(8)
    rules_chart = charts.horizontal_bars(
        [(rule_label(rule), [("rule", _("Checks"), count)]) for rule, count in top_rules],
    )
    return render_template(
        "portal/dashboard.html",
        day=day, today=today, previous_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1) if day < today else None,
        error=error, reports=reports, scope=scope, selected=selected, code=code,
        verdicts=VERDICTS, verdict_names=names, hourly=hourly, per_exit_point=per_exit_point,
        rules_chart=rules_chart, top_rules=[(rule_label(r), n) for r, n in top_rules],
        duration=duration, live=day == today, channels=CHANNELS, channel_names=channel_names(),
        refused=refused, zone=zone,
    )


def state_names() -> dict[str, str]:
    return {"green": _("Working"), "amber": _("Needs attention"), "red": _("Not working")}


@blp.get("/fleet")
@login_required("admin", "officer")
def fleet():
    """Every device by exit point: when it was last heard of, its state and
    why, worst first within each exit point."""
    config = current_app.config
    zone = ZoneInfo(config["RULESET"].timezone)
    now = utcnow()
    devices = fleet_rules.fleet(database.session(), now, config["FLEET"], zone)
    code = (request.args.get("exit_point") or "").upper()
    exit_points = sorted({d.exit_point for d in devices})
    shown = [d for d in devices if not code or d.exit_point == code]
    rank = {state: n for n, state in enumerate(reversed(fleet_rules.STATES))}
    shown.sort(key=lambda d: (d.exit_point, rank[d.state], d.name))
    counts = Counter(d.state for d in shown)
    return render_template(
        "portal/fleet.html", devices=shown, counts=counts, states=fleet_rules.STATES,
        state_names=state_names(), exit_points=exit_points, code=code, now=now,
        silent_for=lambda d: duration(fleet_rules.silence(d, now)), reason_text=fleet_reason,
    )
