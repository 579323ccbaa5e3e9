"""1. API throughput and latency under gunicorn, on PostgreSQL and SQLite,
against the floors.

For each backend, the API runs under the repository's gunicorn.conf.py, and
beside it, under the same settings, the bare Flask app (bench/bare_app.py,
a reference row) and, on PostgreSQL, the minimal endpoints
(bench/minimal_app.py, on the same database): the least work a scan, an
issue and a queue read can be. Each repeat walks the client counts; at each
count wrk drives, one after the other, each real endpoint and then its
floor: POST /scans with a fresh valid form each request and the minimal
scan with fresh forms from the same feed, then POST /scans with fresh
forms and an Idempotency-Key each, as kiosks send them; POST /scans re-scanning forms
already validated and the minimal scan re-scanning the same forms; POST
/forms with a new invoice each request and the minimal issue; GET /checks
(the AMS desk's queue) and the minimal queue read. real/floor and
real/bare are computed per repeat from runs made side by side, then
summarised.
"""
from __future__ import annotations

import json
import secrets
from contextlib import contextmanager, nullcontext
from datetime import date, timedelta

import requests

import harness
import fixture
from harness import log

CLIENTS = (1, 8, 32, 64)
# The client count the targets are read at: its cells get more repeats
# (bench/README.md says why).
TARGET_CLIENTS = 32
# Each real endpoint and the floor it is measured against.
FLOORS = {"scan_fresh": "floor_scan_fresh", "scan_rescan": "floor_scan_rescan",
          "forms_post": "floor_forms_post", "checks_get": "floor_checks_get"}
ENDPOINTS = ("bare",) + tuple(e for real, floor in FLOORS.items() for e in (real, floor))
# Rows beside the others (the targets read the plain fresh scan): a fresh
# scan as the kiosk sends it, with an Idempotency-Key of its own; and one
# while a webhook of the shop listens (registered for the run, removed
# after it), so that each validation also reads who listens and writes its
# outbox row, as wherever a refund intermediary or the shop listens.
ENDPOINTS = ENDPOINTS[:3] + ("scan_fresh_keyed", "scan_fresh_listened") + ENDPOINTS[3:]
FLOOR_OF = {**FLOORS, "scan_fresh_keyed": "floor_scan_fresh", "scan_fresh_listened": "floor_scan_fresh"}
LABELS = {
    "bare": "bare Flask JSON",
    "scan_fresh": "POST /scans (fresh form)",
    "floor_scan_fresh": "minimal scan (fresh form)",
    "scan_fresh_keyed": "POST /scans (fresh form, Idempotency-Key)",
    "scan_fresh_listened": "POST /scans (fresh form, a webhook listens)",
    "scan_rescan": "POST /scans (re-scan)",
    "floor_scan_rescan": "minimal scan (re-scan)",
    "forms_post": "POST /forms",
    "floor_forms_post": "minimal issue",
    "checks_get": "GET /checks?exit_point=AMS",
    "floor_checks_get": "minimal queue read",
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


@contextmanager
def _listening(base: str, world: fixture.World):
    """The shop's webhook (fixture.LISTENING_WEBHOOK) while the block runs."""
    auth = {"Authorization": f"Bearer {world.shop_token}"}
    r = requests.post(base + "/api/v1/webhooks", headers=auth, timeout=10, json=fixture.LISTENING_WEBHOOK)
    assert r.status_code == 201, r.text
    try:
        yield
    finally:
        r = requests.delete(f"{base}/api/v1/webhooks/{r.json()['id']}", headers=auth, timeout=10)
        assert r.status_code == 204, r.text


def _rescan_file(payloads: list[str], name: str) -> str:
    path = harness.WORK / f"rescans-{name}.jsonl"
    path.write_text("".join(json.dumps({"qr_payload": p}) + "\n" for p in payloads))
    return str(path)


def measure_backend(world: fixture.World, feed: PayloadFeed, bare: harness.Server, name: str,
                    clients_list=CLIENTS, repeats: int = 3, seconds: float = 2.0,
                    db_pid: int | None = None, floor: harness.Server | None = None,
                    target_repeats: int = 0) -> dict:
    """All endpoints at all client counts on one backend; the API server is
    started here, the bare server and the floor (bench/minimal_app.py, on
    the same database; None: no floor rows) are shared. CPU per request is
    counted for the API's (or the floor's) workers, the database server
    (``db_pid``) and wrk. ``TARGET_CLIENTS``' cells run ``target_repeats``
    times if that is more than ``repeats``, the extra repeats after the
    others."""
    purchase = (date.today() - timedelta(days=1)).isoformat()
    endpoints = [e for e in ENDPOINTS if floor is not None or not e.startswith("floor_")]
    runs: dict = {e: {c: [] for c in clients_list} for e in endpoints}
    # The listened-to row's webhook names a host that does not resolve here
    # (no network): the registration's URL check, the setting's only effect
    # in the bench, lets it through.
    env = {**world.env, "WEBHOOKS_ALLOW_PRIVATE": "true"}
    with harness.gunicorn("api:create_app()", env, f"api-{name}") as api:
        cpu = {"api": api.pid, **({"db": db_pid} if db_pid else {})}
        floor_cpu = {"api": floor.pid, **({"db": db_pid} if db_pid else {})} if floor else {}
        # Warm-up, and the forms to re-scan later: 1500 fresh forms scanned now.
        rescan = feed.payloads[feed.offset:feed.offset + 1500]
        warm = harness.wrk(api.base + "/api/v1/scans", "payloads.lua", 8, 3, [feed.file(1500), world.device_token])
        feed.used(warm["requests"], 8)
        rescan_file = _rescan_file(rescan[:min(warm["requests"], 1500)], name)
        harness.wrk(bare.base + "/bare", "get.lua", 8, 1)
        if floor is not None:  # every worker's pool, keys and prepared statements
            warm = harness.wrk(floor.base + "/minimal/scan", "payloads.lua", 8, 2,
                               [feed.file(3000), world.device_token])
            feed.used(warm["requests"], 8)
        bases = {"": api.base + "/api/v1", "floor_": (floor.base + "/minimal") if floor else None}
        paths = {"scan_fresh": ("/scans", "/scan"), "scan_fresh_keyed": ("/scans", None),
                 "scan_fresh_listened": ("/scans", None),
                 "scan_rescan": ("/scans", "/scan"),
                 "forms_post": ("/forms", "/forms"), "checks_get": ("/checks?exit_point=AMS", "/checks?exit_point=AMS")}

        def one_run(endpoint: str, clients: int, rep: int) -> dict:
            if endpoint == "bare":
                return harness.wrk(bare.base + "/bare", "get.lua", clients, seconds, cpu_of={"api": bare.pid})
            is_floor = endpoint.startswith("floor_")
            real = endpoint.removeprefix("floor_")
            url = bases["floor_" if is_floor else ""] + paths[real][is_floor]
            cpu_of = floor_cpu if is_floor else cpu
            if real in ("scan_fresh", "scan_fresh_keyed", "scan_fresh_listened"):
                keys = [f"K{rep}C{clients}X{secrets.token_hex(4)}"] if real == "scan_fresh_keyed" else []
                with _listening(api.base, world) if real == "scan_fresh_listened" else nullcontext():
                    result = harness.wrk(url, "payloads.lua", clients, seconds,
                                         [feed.file(), world.device_token, *keys], cpu_of=cpu_of)
                feed.used(result["requests"], clients)
                return result
            if real == "scan_rescan":
                result = harness.wrk(url, "payloads.lua", clients, seconds,
                                     [rescan_file, world.device_token], cpu_of=cpu_of)
                return dict(result, wrapped=0)  # re-scans cycle through their set on purpose
            if real == "forms_post":
                # Unique invoice numbers, also between the API and its floor.
                tag = f"{'M' if is_floor else 'R'}{rep}C{clients}X{secrets.token_hex(2)}".upper()
                return harness.wrk(url, "forms.lua", clients, seconds,
                                   [tag, world.shop_token, purchase], cpu_of=cpu_of)
            return harness.wrk(url, "get.lua", clients, seconds, [world.officer_token], cpu_of=cpu_of)

        for rep in range(max(repeats, target_repeats)):
            for clients in (c for c in clients_list if rep < repeats or c == TARGET_CLIENTS):
                for endpoint in endpoints:
                    runs[endpoint][clients].append(one_run(endpoint, clients, rep))
                log(f"{name} rep {rep + 1} c={clients}: "
                    + ", ".join(f"{e} {runs[e][clients][-1]['rps']:.0f}/s" for e in endpoints))
    out = {e: {c: harness.summarise_cells(runs[e][c]) for c in clients_list} for e in endpoints}
    for c in clients_list:
        for e in endpoints[1:]:
            out[e][c]["ratio_to_bare"] = harness.ratios([r["rps"] for r in runs[e][c]],
                                                        [r["rps"] for r in runs["bare"][c]])
            if FLOOR_OF.get(e) in runs:
                out[e][c]["ratio_to_floor"] = harness.ratios([r["rps"] for r in runs[e][c]],
                                                             [r["rps"] for r in runs[FLOOR_OF[e]][c]])
    out["payloads_left"] = feed.remaining()
    out["raw"] = {e: {c: runs[e][c] for c in clients_list} for e in endpoints}
    return out
