"""2. Growth: scans and the officer's queue with 10 thousand and 1 million
forms in PostgreSQL.

One database, measured twice under the same gunicorn server: first with
10,000 forms, then after bulk-loading 990,000 more (COPY; history forms
with lines, one in twelve checked at a desk, 60 checks pending at AMS). Each
size has its own 4,000 fresh scannable forms. At each size, repeated: POST
/scans with fresh forms and GET /checks?exit_point=AMS, one client at a time
(latency as the data grows, without queueing behind other clients).
Ratios large/small are per repeat, then summarised.
"""
from __future__ import annotations

import re
import time

import fixture
import harness
from api_load import PayloadFeed
from harness import log

SMALL, LARGE, SCANNABLE, PENDING = 10_000, 1_000_000, 4_000, 60


def _measure(api, world, feed, clients, seconds, repeats):
    runs = {"scan": [], "queue": []}
    for _ in range(repeats):
        scan = harness.wrk(api.base + "/api/v1/scans", "payloads.lua", clients, seconds,
                           [feed.file(), world.device_token])
        feed.used(scan["requests"], clients)
        runs["scan"].append(scan)
        runs["queue"].append(harness.wrk(api.base + "/api/v1/checks?exit_point=AMS", "get.lua",
                                         clients, seconds, [world.officer_token]))
    return runs


def _explain_queue(world) -> list[str]:
    """EXPLAIN ANALYZE of the queue's main query, as the API sends it."""
    import hotspots

    with fixture.environment(world.env):
        from api import create_app

        app = create_app()
    try:
        sql = hotspots.statements(app, "GET", "/api/v1/checks?exit_point=AMS",
                                  {"Authorization": f"Bearer {world.officer_token}"}, full=True)
        # The statement that reads the checks table (whatever else it joins).
        slowest = max((s for s in sql if re.search(r"\bFROM checks\b", s[0], re.IGNORECASE)),
                      key=lambda s: s[1], default=None)
        if slowest is None:
            return []
        statement, _, params = slowest
        with app.extensions["db_engine"].connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
        return [r[0] for r in rows]
    finally:
        app.extensions["db_engine"].dispose()


def run(world, clients: int = 1, seconds: float = 3.0, repeats: int = 3) -> dict:
    t = time.monotonic()
    payloads = fixture.load_forms(world, 0, SMALL, scannable=SCANNABLE, pending_checks=PENDING)
    small_load_s = time.monotonic() - t
    feed = PayloadFeed(payloads, "growth")
    result = {"clients": clients, "seconds": seconds, "repeats": repeats}
    with harness.gunicorn("api:create_app()", world.env, "api-growth") as api:
        warm = harness.wrk(api.base + "/api/v1/scans", "payloads.lua", clients, 1,
                           [feed.file(), world.device_token])
        feed.used(warm["requests"], clients)
        small = _measure(api, world, feed, clients, seconds, repeats)
        log(f"growth: {SMALL} forms measured; loading {LARGE - SMALL} more")
        t = time.monotonic()
        payloads = fixture.load_forms(world, SMALL, LARGE - SMALL, scannable=SCANNABLE)
        result["load_990k_s"] = time.monotonic() - t
        log(f"growth: {LARGE - SMALL} forms loaded in {result['load_990k_s']:.0f} s")
        feed = PayloadFeed(payloads, "growth-large")
        warm = harness.wrk(api.base + "/api/v1/scans", "payloads.lua", clients, 1,
                           [feed.file(), world.device_token])
        feed.used(warm["requests"], clients)
        large = _measure(api, world, feed, clients, seconds, repeats)
    result["load_10k_s"] = small_load_s
    for what in ("scan", "queue"):
        result[what] = {}
        for size, runs in (("10k", small), ("1M", large)):
            result[what][size] = harness.summarise_cells(runs[what])
        for q in ("p50_ms", "p99_ms"):
            result[what][f"ratio_{q}"] = harness.ratios([r[q] for r in large[what]],
                                                        [r[q] for r in small[what]])
    result["queue_explain_1M"] = _explain_queue(world)
    return result
