"""2. Growth: scans and the officer's queue with 10 thousand and 1 million
forms in PostgreSQL.

Two databases side by side, each in its own throwaway cluster and served
by its own gunicorn (the repository's gunicorn.conf.py): one with 10,000
forms, one with 1,000,000 (bulk-loaded with COPY; history forms with lines,
one in twelve checked at a desk, 60 checks pending at AMS), each with its
own fresh scannable forms. The runs alternate between the two sizes (the
order swapped every repeat), so that other work on the machine falls on
both alike rather than on whichever size was measured later.

Each run is one client (latency as the data grows, without queueing
behind other clients) sending ``per_run`` requests one after the other
and timing every one (harness.one_client): POST /scans with fresh forms,
then GET /checks?exit_point=AMS. p50 and p99 are taken over every request
of every run of a size (``repeats`` x ``per_run`` samples: thousands, so a
p99 is not a handful of outliers); the ratios 1M/10k are of those pooled
figures, and per repeat (min-max) as a check on their spread.
"""
from __future__ import annotations

import json
import re
import time

import fixture
import harness
from harness import log, percentile

SMALL, LARGE, PENDING = 10_000, 1_000_000, 60
SIZES = ("10k", "1M")


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


def _pooled(runs: list[dict]) -> dict:
    every = [ms for r in runs for ms in r["latencies_ms"]]
    return {"n": len(every), "p50_ms": percentile(every, 50), "p99_ms": percentile(every, 99),
            "max_ms": max(every, default=float("nan")), "errors": sum(r["errors"] for r in runs),
            "refused": sum(r["refused"] for r in runs),
            "per_run_p99_ms": harness.spread(percentile(r["latencies_ms"], 99) for r in runs)}


def run(small_world, large_world, per_run: int = 800, repeats: int = 5, large: int = LARGE) -> dict:
    """Both sizes measured alternately; ``small_world`` and ``large_world``
    are fixture worlds on two empty databases."""
    scannable = per_run * repeats + 200
    worlds = {"10k": small_world, "1M": large_world}
    payloads, load_s = {}, {}
    for size, count in (("10k", SMALL), ("1M", large)):
        t = time.monotonic()
        payloads[size] = fixture.load_forms(worlds[size], 0, count, scannable=scannable, pending_checks=PENDING)
        load_s[size] = time.monotonic() - t
        log(f"growth: {count} forms loaded in {load_s[size]:.0f} s")
    result = {"clients": 1, "per_run": per_run, "repeats": repeats, "large_forms": large,
              "load_10k_s": load_s["10k"], "load_large_s": load_s["1M"]}
    runs = {what: {size: [] for size in SIZES} for what in ("scan", "queue")}
    with harness.gunicorn("api:create_app()", small_world.env, "api-growth-10k") as small_api, \
            harness.gunicorn("api:create_app()", large_world.env, "api-growth-1M") as large_api:
        apis = {"10k": small_api, "1M": large_api}
        bodies = {size: [json.dumps({"qr_payload": p}).encode() for p in payloads[size]] for size in SIZES}
        offset = {size: 0 for size in SIZES}

        def measure(size: str, what: str, count: int) -> dict:
            world, base = worlds[size], apis[size].base
            if what == "queue":
                return harness.one_client(base + "/api/v1/checks?exit_point=AMS",
                                          {"Authorization": f"Bearer {world.officer_token}"}, count)
            chunk = bodies[size][offset[size]:offset[size] + count]
            offset[size] += count
            return harness.one_client(base + "/api/v1/scans", {"Authorization": f"Bearer {world.device_token}"},
                                      len(chunk), chunk)

        for size in SIZES:  # warm-up: every worker, both kinds of request
            measure(size, "scan", 150)
            measure(size, "queue", 150)
        for rep in range(repeats):
            for size in SIZES if rep % 2 == 0 else SIZES[::-1]:
                for what in ("scan", "queue"):
                    runs[what][size].append(measure(size, what, per_run))
            log(f"growth rep {rep + 1}/{repeats}: " + ", ".join(
                f"{what} {size} p99 {percentile(runs[what][size][-1]['latencies_ms'], 99):.1f} ms"
                for what in runs for size in SIZES))
    for what in ("scan", "queue"):
        result[what] = {size: _pooled(runs[what][size]) for size in SIZES}
        for q in ("p50_ms", "p99_ms"):
            result[what][f"ratio_{q}"] = result[what]["1M"][q] / result[what]["10k"][q]
            result[what][f"ratio_{q}_per_repeat"] = harness.ratios(
                [percentile(r["latencies_ms"], int(q[1:3])) for r in runs[what]["1M"]],
                [percentile(r["latencies_ms"], int(q[1:3])) for r in runs[what]["10k"]])
    result["queue_explain_1M"] = _explain_queue(large_world)
    return result
