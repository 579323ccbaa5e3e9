"""Gauges read from the database when Prometheus scrapes: the officers'
queue per exit point, the webhook backlog, and the device fleet.

Each is one short query (the pending checks through their partial index,
the undelivered webhooks through their status index, one row per device),
run only on a scrape, never kept in a process: every worker and every
host answers the same. If the database cannot be reached,
``taxfree_database_up`` is 0 and the rest is left out.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..models import Check, ExitPoint, WebhookDelivery
from ..services import fleet

_PENDING = (
    select(Check.exit_point_id, func.count().label("waiting"), func.min(Check.opened_at).label("oldest"))
    .where(Check.status == "pending")
    .group_by(Check.exit_point_id)
    .subquery()
)
_EXIT_POINTS = (
    select(ExitPoint.code, ExitPoint.opening_hours, _PENDING.c.waiting, _PENDING.c.oldest)
    .outerjoin(_PENDING, _PENDING.c.exit_point_id == ExitPoint.id)
    .order_by(ExitPoint.code)
)
_UNDELIVERED = (
    select(WebhookDelivery.status, func.count(), func.min(WebhookDelivery.created_at),
           func.sum(case((WebhookDelivery.failures > 0, 1), else_=0)))
    .where(WebhookDelivery.status.in_(("pending", "failed")))
    .group_by(WebhookDelivery.status)
)
_DEVICE_LABELS = ["device", "name", "exit_point", "kind"]


class DatabaseCollector:
    """A prometheus-client collector over one database session."""

    def __init__(self, session: Session, now: datetime, rules: fleet.FleetRules, zone: ZoneInfo):
        self.session = session
        self.now = now
        self.rules = rules
        self.zone = zone

    def collect(self):
        up = GaugeMetricFamily("taxfree_database_up", "1 if the database answered this scrape's queries")
        try:
            families = [*self._exit_points(), *self._webhooks(), *self._fleet()]
        except SQLAlchemyError:
            self.session.rollback()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _age(self, since: datetime | None) -> float:
        return max((self.now - since).total_seconds(), 0.0) if since is not None else 0.0

    def _exit_points(self):
        length = GaugeMetricFamily("taxfree_officer_queue_length",
                                   "Travellers' forms waiting for a check at the desk", labels=["exit_point"])
        oldest = GaugeMetricFamily("taxfree_officer_queue_oldest_wait_seconds",
                                   "How long the longest-waiting check has waited (0: none waiting)",
                                   labels=["exit_point"])
        open_now = GaugeMetricFamily("taxfree_exit_point_open",
                                     "1 within the exit point's opening hours", labels=["exit_point"])
        for code, hours, waiting, since in self.session.execute(_EXIT_POINTS):
            length.add_metric([code], waiting or 0)
            oldest.add_metric([code], self._age(since))
            open_now.add_metric([code], 1 if fleet.is_open(hours, self.now, self.zone) else 0)
        return [length, oldest, open_now]

    def _webhooks(self):
        counts = {status: (n, since, failing) for status, n, since, failing in self.session.execute(_UNDELIVERED)}
        pending, since, failing = counts.get("pending", (0, None, 0))
        backlog = GaugeMetricFamily("taxfree_webhook_backlog", "Webhook deliveries not delivered yet")
        backlog.add_metric([], pending)
        age = GaugeMetricFamily("taxfree_webhook_oldest_undelivered_age_seconds",
                                "Age of the oldest webhook delivery not delivered yet (0: none)")
        age.add_metric([], self._age(since))
        retrying = GaugeMetricFamily("taxfree_webhook_deliveries_retrying",
                                     "Undelivered webhook deliveries whose last attempt failed")
        retrying.add_metric([], failing or 0)
        failed = GaugeMetricFamily("taxfree_webhook_deliveries_failed",
                                   "Webhook deliveries given up after their retry window")
        failed.add_metric([], counts.get("failed", (0,))[0])
        return [backlog, age, retrying, failed]

    def _fleet(self):
        def gauge(name, text):
            return GaugeMetricFamily(name, text, labels=_DEVICE_LABELS)

        last_seen = gauge("taxfree_device_last_seen_timestamp_seconds",
                          "Last heartbeat of the device (its registration if it never sent one), Unix time")
        depth = gauge("taxfree_device_offline_queue_depth", "Items waiting in the device's offline queue")
        queue_age = gauge("taxfree_device_offline_queue_oldest_age_seconds",
                          "How long the oldest item in the device's offline queue has waited (0: none)")
        writable = gauge("taxfree_device_offline_queue_writable", "0 if the device could not write its queue")
        camera = gauge("taxfree_device_camera_ok", "1 if the device's camera works (devices with a camera)")
        disk = gauge("taxfree_device_free_disk_bytes", "Free disk space on the device")
        skew = gauge("taxfree_device_clock_skew_seconds", "The device's clock minus the server's")
        states = GaugeMetricFamily("taxfree_devices", "Devices by exit point and fleet state",
                                   labels=["exit_point", "state"])
        per_state: dict[tuple[str, str], int] = {}
        for device in fleet.fleet(self.session, self.now, self.rules, self.zone):
            labels = [device.id, device.name, device.exit_point, device.kind]
            last_seen.add_metric(labels, (device.last_seen or device.registered_at).timestamp())
            for state in fleet.STATES:
                per_state.setdefault((device.exit_point, state), 0)
            per_state[(device.exit_point, device.state)] += 1
            beat = device.heartbeat
            if beat is None:
                continue
            depth.add_metric(labels, beat["queue_depth"])
            queue_age.add_metric(labels, self._age(beat["oldest_queued_at"]))
            writable.add_metric(labels, 1 if beat["queue_writable"] else 0)
            if beat["camera_ok"] is not None:
                camera.add_metric(labels, 1 if beat["camera_ok"] else 0)
            disk.add_metric(labels, beat["free_disk_bytes"])
            skew.add_metric(labels, beat["clock_skew_seconds"])
        for (exit_point, state), count in sorted(per_state.items()):
            states.add_metric([exit_point, state], count)
        return [last_seen, depth, queue_age, writable, camera, disk, skew, states]
