"""Prometheus metrics (prometheus-client), served at ``GET /metrics``.

Counted as things happen, in the process that sees them: requests per
route (the URL rule) and status with their latency, verdicts per exit
point, channel and verdict, database errors, the connection pool in use,
device heartbeats and webhook delivery attempts. Under gunicorn every
worker is a process of its own: prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set up by gunicorn.conf.py before the
workers start) keeps each worker's values in a file there, and a scrape
served by any worker adds them all up.

What the database knows (the officer queue, the webhook backlog, the
fleet) is not kept in the process: ``collector.DatabaseCollector`` reads it
when Prometheus scrapes, one cheap query each.
"""
from __future__ import annotations

import os

from flask import Flask

# A process that starts before gunicorn made the metrics folder (a CLI
# command, the webhook worker) would fail to create its metric files.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

#: How a verdict was reached: a kiosk or tablet the traveller used, the
#: customs desk (an officer's handheld scan or decision), or the traveller's
#: own app.
CHANNELS = ("kiosk", "desk", "app")

REQUESTS = Counter("taxfree_http_requests", "HTTP requests answered, by URL rule and status",
                   ["method", "route", "status"])
LATENCY = Histogram("taxfree_http_request_duration_seconds",
                    "Time from the request reaching the app to its response, by URL rule",
                    ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
VERDICTS = Counter("taxfree_verdicts", "Verdicts given, by exit point, channel and verdict",
                   ["exit_point", "channel", "verdict"])
DATABASE_ERRORS = Counter("taxfree_database_errors", "Errors raised by the database driver, by kind",
                          ["error"])
POOL_IN_USE = Gauge("taxfree_db_pool_connections_in_use", "Database connections checked out right now",
                    multiprocess_mode="livesum")
POOL_OPEN = Gauge("taxfree_db_pool_connections_open", "Database connections open right now",
                  multiprocess_mode="livesum")
POOL_LIMIT = Gauge("taxfree_db_pool_connections_limit", "Connections the pools may open (size + overflow)",
                   multiprocess_mode="livesum")
HEARTBEATS = Counter("taxfree_device_heartbeats", "Device heartbeats received, by exit point and device kind",
                     ["exit_point", "kind"])
DELIVERY_ATTEMPTS = Counter("taxfree_webhook_delivery_attempts",
                            "Webhook delivery attempts by what came of them (delivered, retrying, failed)",
                            ["result"])


def multiprocess_mode() -> bool:
    """True under gunicorn (gunicorn.conf.py sets the directory)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def count_verdict(exit_point: str | None, channel: str, verdict: str) -> None:
    """Count one verdict given to a traveller: a scan's ``validated``,
    ``check_required`` or ``refused``, or an officer's decision. Call it
    once the verdict is committed, not for a replayed answer."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    VERDICTS.labels(exit_point or "none", channel, verdict).inc()


_REQUEST_SERIES: dict = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    # The labelled children, looked up once per route and status (a few
    # dozen): prometheus-client's labels() takes a lock and builds a key.
    series = _REQUEST_SERIES.get((method, route, status))
    if series is None:
        series = _REQUEST_SERIES[(method, route, status)] = (
            REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
    series[0].inc()
    series[1].observe(seconds)


def count_delivery(result: str) -> None:
    DELIVERY_ATTEMPTS.labels(result).inc()


def count_heartbeat(exit_point: str | None, kind: str | None) -> None:
    HEARTBEATS.labels(exit_point or "none", kind or "unknown").inc()


def instrument(engine: Engine) -> None:
    """Count the engine's driver errors and follow its connection pool."""

    @event.listens_for(engine, "handle_error")
    def _error(context):
        error = context.sqlalchemy_exception or context.original_exception
        DATABASE_ERRORS.labels(type(error).__name__).inc()

    @event.listens_for(engine, "connect")
    def _connect(_dbapi, _record):
        POOL_OPEN.inc()

    @event.listens_for(engine, "close")
    def _close(_dbapi, _record):
        POOL_OPEN.dec()

    @event.listens_for(engine, "checkout")
    def _checkout(_dbapi, _record, _proxy):
        POOL_IN_USE.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi, _record):
        POOL_IN_USE.dec()

    pool = engine.pool
    if hasattr(pool, "size"):  # a QueuePool: its size and how far it may overflow
        POOL_LIMIT.inc(pool.size() + max(getattr(pool, "_max_overflow", 0), 0))


def init_app(app: Flask) -> None:
    instrument(app.extensions["db_engine"])


def exposition(*collectors) -> bytes:
    """The metrics in Prometheus' text format: every process's counters
    (all gunicorn workers' in multiprocess mode), then ``collectors``'."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scraped = CollectorRegistry()
    for collector in collectors:
        scraped.register(collector)
    return text + generate_latest(scraped)
