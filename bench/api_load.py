"""1. API throughput and latency under gunicorn, on PostgreSQL and SQLite.

For each backend, the API runs under the repository's gunicorn.conf.py, and
beside it the bare Flask app (bench/bare_app.py) under the same settings.
Each repeat walks the client counts; at each count wrk drives, one after
the other: the bare endpoint, POST /scans with a fresh valid form each
request, POST /scans re-scanning forms already decided, POST /forms with a
new invoice each request, GET /checks (the AMS desk's queue). scans/bare is
computed per repeat from the two neighbouring runs, then summarised.
"""
from __future__ import annotations

import json
import secrets
from datetime import date, timedelta

import harness
import fixture
from harness import log

ENDPOINTS = ("bare", "scan_fresh", "scan_rescan", "forms_post", "checks_get")
CLIENTS = (1, 8, 32, 64)
LABELS = {
    "bare": "bare Flask JSON",
    "scan_fresh": "POST /scans (fresh form)",
    "scan_rescan": "POST /scans (re-scan)",
    "forms_post": "POST /forms",
    "checks_get": "GET /checks?exit_point=AMS",
}


class PayloadFeed:
    """Hands out unused QR payloads, one file per wrk run."""

    def __init__(self, payloads: list[str], name: str):
        self.payloads = payloads
        self.offset = 0
        self.path = harness.WORK / f"payloads-{name}.jsonl"

    def remaining(self) -> int:
        return len(self.payloads) - self.offset

    def file(self, limit: int = 30_000) -> str:
        chunk = self.payloads[self.offset:self.offset + limit]
        self.path.write_text("".join(json.dumps({"qr_payload": p}) + "\n" for p in chunk))
        return str(self.path)

    def used(self, requests: int, clients: int) -> None:
        # Requests still in flight when wrk stopped may have reached the API
        # (seen: up to one per connection, and one more): skip generously.
        self.offset += requests + 2 * clients + 8


def _rescan_file(payloads: list[str], name: str) -> str:
    path = harness.WORK / f"rescans-{name}.jsonl"
    path.write_text("".join(json.dumps({"qr_payload": p}) + "\n" for p in payloads))
    return str(path)


def measure_backend(world: fixture.World, feed: PayloadFeed, bare: harness.Server, name: str,
                    clients_list=CLIENTS, repeats: int = 3, seconds: float = 2.0,
                    db_pid: int | None = None) -> dict:
    """All endpoints at all client counts on one backend; the API server is
    started here, the bare server is shared. CPU per request is counted for
    the API's workers, the database server (``db_pid``) and wrk."""
    purchase = (date.today() - timedelta(days=1)).isoformat()
    runs: dict = {e: {c: [] for c in clients_list} for e in ENDPOINTS}
    with harness.gunicorn("api:create_app()", world.env, f"api-{name}") as api:
        scans_url = api.base + "/api/v1/scans"
        cpu = {"api": api.pid, **({"db": db_pid} if db_pid else {})}
        # Warm-up, and the forms to re-scan later: 1500 fresh forms scanned now.
        rescan = feed.payloads[feed.offset:feed.offset + 1500]
        warm = harness.wrk(scans_url, "payloads.lua", 8, 3, [feed.file(1500), world.device_token])
        feed.used(warm["requests"], 8)
        rescan_file = _rescan_file(rescan[:min(warm["requests"], 1500)], name)
        harness.wrk(bare.base + "/bare", "get.lua", 8, 1)
        checks_url = api.base + "/api/v1/checks?exit_point=AMS"

        def one_run(endpoint: str, clients: int, rep: int) -> dict:
            if endpoint == "bare":
                return harness.wrk(bare.base + "/bare", "get.lua", clients, seconds, cpu_of={"api": bare.pid})
            if endpoint == "scan_fresh":
                result = harness.wrk(scans_url, "payloads.lua", clients, seconds,
                                     [feed.file(), world.device_token], cpu_of=cpu)
                feed.used(result["requests"], clients)
                return result
            if endpoint == "scan_rescan":
                result = harness.wrk(scans_url, "payloads.lua", clients, seconds,
                                     [rescan_file, world.device_token], cpu_of=cpu)
                return dict(result, wrapped=0)  # re-scans cycle through their set on purpose
            if endpoint == "forms_post":
                tag = f"R{rep}C{clients}X{secrets.token_hex(2)}".upper()  # unique invoice numbers
                return harness.wrk(api.base + "/api/v1/forms", "forms.lua", clients, seconds,
                                   [tag, world.shop_token, purchase], cpu_of=cpu)
            return harness.wrk(checks_url, "get.lua", clients, seconds, [world.officer_token], cpu_of=cpu)

        for rep in range(repeats):
            for clients in clients_list:
                for endpoint in ENDPOINTS:
                    runs[endpoint][clients].append(one_run(endpoint, clients, rep))
                log(f"{name} rep {rep + 1}/{repeats} c={clients}: "
                    + ", ".join(f"{e} {runs[e][clients][-1]['rps']:.0f}/s" for e in ENDPOINTS))
    out = {e: {c: harness.summarise_cells(runs[e][c]) for c in clients_list} for e in ENDPOINTS}
    for c in clients_list:
        for e in ENDPOINTS[1:]:
            out[e][c]["ratio_to_bare"] = harness.ratios([r["rps"] for r in runs[e][c]],
                                                        [r["rps"] for r in runs["bare"][c]])
    out["payloads_left"] = feed.remaining()
    out["raw"] = {e: {c: runs[e][c] for c in clients_list} for e in ENDPOINTS}
    return out
