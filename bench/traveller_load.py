"""The traveller app's path (``--only app``; in section 1 of the results):
POST /api/v1/traveller/validations beside the kiosk's POST /scans, measured
one after the other in the same run, at 1, 8, 32 and 64 clients, on
PostgreSQL and SQLite.

Each validation is another traveller's, as the app sends it: the traveller
signed in beforehand (POST /traveller/session, outside the timed runs), one
fresh form of their own (a fixture form: a passport each, issued by the
fixture's shop), their own app install, an Idempotency-Key, a boarding pass
for today from AMS to Beijing, and evidence that places the phone at AMS: a
GPS fix inside the validation zone and the current token of the sensor post
opposite the desk. Zone and post are made through the admin API; the post's
secret, shown once, is kept by the bench to compute its tokens
(shared.presence). Tokens count for the current and the previous 30-second
step only, so each run's bodies are made just before it.

The kiosk's scan beside it is POST /scans with a fresh form and an
Idempotency-Key each request, as the kiosk sends it; both go through the same
wrk script (bench/wrk/validate.lua), which counts each form's verdict.

The API runs with the bench's environment plus ``APP_ENV`` (settings, no
code changed): sign-ins per address raised (every phone here is 127.0.0.1),
and the first-use rule off (every install here signed in seconds ago, and
would be sent to the desk). The random check (5 %) and every other rule stay
as in production, for the app and the kiosk alike. A cell where most
validations are not validated fails the benchmark: then it measured refusals,
not the app's path.
"""
from __future__ import annotations

import json
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import fixture
import harness
import requests
from harness import fmt, log

CLIENTS = (1, 8, 32, 64)
KIOSK, APP = "scan_fresh_keyed", "traveller_validate"
LABELS = {KIOSK: "POST /scans (fresh form, Idempotency-Key)", APP: "POST /traveller/validations"}
VERDICTS = ("validated", "check_required", "refused")

APP_ENV = {
    "TRAVELLER_SIGNINS_PER_ADDRESS_PER_MINUTE": "1000000",
    "RISK_POLICY": json.dumps({"app_new_install_minutes": 0}),
}

EXIT_POINT = "AMS"
POST_ID = "AMS-D2-01"
# A rectangle over Schiphol's Departures 2 ([longitude, latitude]) and a
# point inside it.
ZONE = {"type": "Polygon", "coordinates": [[[4.7660, 52.3098], [4.7700, 52.3098], [4.7700, 52.3118],
                                            [4.7660, 52.3118], [4.7660, 52.3098]]]}
HERE = (52.3108, 4.7683)
STEP_SECONDS = 30  # the API's PRESENCE_POLICY default
# Fixture indexes of the travellers' forms: far from the kiosk's (0 ...).
TRAVELLER_START = 10_000_000
# Travellers and kiosk forms per backend, enough for every run at the rates
# seen on 2 cores (a cell that runs out says so: "wrapped").
POOL = {"travellers": 14000, "sqlite_kiosk_forms": 14000}
# A token is re-issued (signed in again) when older than this; it lives 900 s.
SIGN_IN_AGAIN_AFTER_S = 600


@dataclass
class Traveller:
    passport: str
    form_id: str
    install_id: str
    token: str | None = None
    signed_in_at: float = 0.0


@dataclass(frozen=True)
class Post:
    """The sensor post at the exit point, whose tokens the phones hear."""
    post_id: str
    secret: bytes


def add_zone_and_post(world: fixture.World) -> Post:
    """A validation zone and a sensor post at AMS, through the admin API
    (in-process); returns the post with the secret the API showed once."""
    from api import create_app

    with fixture.environment(world.env):
        app = create_app()
    try:
        client = app.test_client()
        r = client.post("/api/v1/auth/token", json={"username": "root", "password": fixture.PASSWORD})
        assert r.status_code == 200, r.get_json()
        root = {"Authorization": f"Bearer {r.get_json()['access_token']}"}
        r = client.post(f"/api/v1/exit-points/{EXIT_POINT}/zones", json={"name": "Departures 2", "polygon": ZONE},
                        headers=root)
        assert r.status_code == 201, r.get_json()
        r = client.post(f"/api/v1/exit-points/{EXIT_POINT}/sensor-posts", json={"id": POST_ID}, headers=root)
        assert r.status_code == 201, r.get_json()
        return Post(POST_ID, bytes.fromhex(r.get_json()["secret"]))
    finally:
        app.extensions["db_engine"].dispose()


def load_travellers(world: fixture.World, count: int, start: int = TRAVELLER_START) -> list[Traveller]:
    """``count`` travellers, each with one fresh form of their own (bulk
    loaded like the kiosk's) and an app install of their own."""
    fixture.load_forms(world, start, count, scannable=count)
    return [Traveller(fixture.passport_of(i), fixture.form_id_of(i), str(uuid.uuid4()))
            for i in range(start, start + count)]


def sign_in(base: str, travellers: list[Traveller], threads: int = 8) -> None:
    """Each traveller signs in through the API (as the app does once, before
    validating): a traveller token each."""
    sessions: dict[int, requests.Session] = {}

    def one(t: Traveller) -> None:
        import threading

        session = sessions.setdefault(threading.get_ident(), requests.Session())
        r = session.post(base + "/api/v1/traveller/session", timeout=30, json={
            "passport_number": t.passport, "passport_country": fixture.TRAVELLER_COUNTRY,
            "date_of_birth": fixture.TRAVELLER_BIRTH.isoformat(), "install_id": t.install_id})
        if r.status_code != 200:
            raise RuntimeError(f"traveller sign-in answered {r.status_code}: {r.text[:300]}")
        t.token, t.signed_in_at = r.json()["access_token"], time.monotonic()

    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, travellers))
    finally:
        for session in sessions.values():
            session.close()


def boarding_pass(day: date, origin: str = EXIT_POINT, destination: str = "PEK") -> str:
    """An IATA BCBP boarding pass (one leg) for a flight on ``day``."""
    julian = day.timetuple().tm_yday
    leg = f"{'BNCH01':<7}{origin}{destination}{'KL':<3}{'0897':<5}{julian:03d}Y{'012A':>4}{'0042':<5}100"
    return f"M1{'CHEN/MEI':<20}E" + leg


def validation_body(traveller: Traveller, post: Post, now: datetime) -> dict:
    """What the app sends at AMS at ``now``: the traveller's form, a GPS fix
    in the zone and the post's current token, heard a moment ago."""
    from shared import presence, rules

    token = presence.beacon_token(post.secret, now, STEP_SECONDS, post_id=post.post_id)
    today = rules.local_today(now, "Europe/Amsterdam")
    return {
        "exit_point": EXIT_POINT, "form_ids": [traveller.form_id],
        "evidence": {
            "install_id": traveller.install_id,
            "gps": {"lat": HERE[0], "lon": HERE[1], "accuracy_m": 12.0, "mock": False,
                    "at": (now - timedelta(seconds=3)).isoformat()},
            "beacons": [{"post_id": post.post_id, "token": token,
                         "seen_at": (now - timedelta(seconds=1)).isoformat(), "rssi": -61}],
        },
        "trip": {"kind": "flight", "boarding_pass": boarding_pass(today)},
    }


class TravellerFeed:
    """Hands out travellers not yet used, one file of requests per wrk run,
    each signed in and with evidence made just before the run."""

    def __init__(self, travellers: list[Traveller], post: Post, name: str):
        self.travellers, self.post = travellers, post
        self.offset = 0
        self.path = harness.WORK / f"validations-{name}.tsv"

    def remaining(self) -> int:
        return len(self.travellers) - self.offset

    def batch(self, base: str, limit: int) -> list[Traveller]:
        """The next ``limit`` travellers, signed in (again, if their token is
        getting old)."""
        chunk = self.travellers[self.offset:self.offset + limit]
        if not chunk:
            raise RuntimeError(f"no traveller left of {len(self.travellers)}: raise traveller_load.POOL")
        stale = time.monotonic() - SIGN_IN_AGAIN_AFTER_S
        sign_in(base, [t for t in chunk if t.token is None or t.signed_in_at < stale])
        return chunk

    def file(self, base: str, limit: int) -> str:
        now = datetime.now(UTC)
        lines = [f"{t.token}\t{json.dumps(validation_body(t, self.post, now))}\n" for t in self.batch(base, limit)]
        self.path.write_text("".join(lines))
        return str(self.path)

    def used(self, requests: int, clients: int) -> None:
        # As api_load.PayloadFeed: requests in flight when wrk stopped may
        # have reached the API.
        self.offset += requests + 2 * clients + 8


def kiosk_file(feed, device_token: str, name: str, limit: int) -> str:
    """The kiosk's scans in validate.lua's format: the device token and a
    fresh form's QR payload a line (from api_load.PayloadFeed ``feed``)."""
    path = harness.WORK / f"kiosk-scans-{name}.tsv"
    chunk = feed.payloads[feed.offset:feed.offset + limit]
    if not chunk:
        raise RuntimeError(f"no fresh form left for the kiosk's scans of {len(feed.payloads)}")
    path.write_text("".join(f"{device_token}\t{json.dumps({'qr_payload': p})}\n" for p in chunk))
    return str(path)


def verdicts(runs: list[dict]) -> dict:
    return {v: sum(r.get(v, 0) for r in runs) for v in (*VERDICTS, "unexpected")}


def _check(result: dict, clients: int, name: str) -> None:
    """Fail loudly when the runs measured something else than validations."""
    if result["requests"] == 0 or result["validated"] * 2 < result["requests"]:
        raise RuntimeError(
            f"{name}: traveller validations at {clients} clients: of {result['requests']} requests "
            f"{result['validated']} validated, {result['check_required']} check_required, "
            f"{result['refused']} refused, {result['errors']} errors {result['error_detail']}, "
            f"{result['unexpected']} without a verdict (see bench/results/work/gunicorn-app-{name}.log)")


def measure_backend(world: fixture.World, kiosk_feed, travellers: TravellerFeed, name: str,
                    clients_list=CLIENTS, repeats: int = 3, seconds: float = 2.0,
                    db_pid: int | None = None) -> dict:
    """At each client count and repeat, the kiosk's scan then the app's
    validation, on one API under gunicorn (the bench's settings and
    ``APP_ENV``)."""
    runs: dict = {e: {c: [] for c in clients_list} for e in (KIOSK, APP)}
    best = {KIOSK: 150.0, APP: 150.0}  # requests/s, for the size of each run's file

    def limit(endpoint: str, clients: int) -> int:
        return int(best[endpoint] * 2 * max(seconds, 1)) + 2 * clients + 20

    with harness.gunicorn("api:create_app()", {**world.env, **APP_ENV}, f"app-{name}") as api:
        cpu = {"api": api.pid, **({"db": db_pid} if db_pid else {})}
        url = {KIOSK: api.base + "/api/v1/scans", APP: api.base + "/api/v1/traveller/validations"}

        def one_run(endpoint: str, clients: int, run_seconds: float, tag: str) -> dict:
            key = f"{tag}X{secrets.token_hex(4)}"
            if endpoint == KIOSK:
                bodies = kiosk_file(kiosk_feed, world.device_token, name, limit(KIOSK, clients))
                feed = kiosk_feed
            else:
                bodies = travellers.file(api.base, limit(APP, clients))
                feed = travellers
            result = harness.wrk(url[endpoint], "validate.lua", clients, run_seconds, [bodies, key], cpu_of=cpu)
            feed.used(result["requests"], clients)
            best[endpoint] = max(best[endpoint], result["rps"])
            if endpoint == APP:
                _check(result, clients, name)
            return result

        # Warm-up: every worker's connections, keys and statements.
        one_run(KIOSK, 8, 2, "W")
        one_run(APP, 8, 2, "W")
        for rep in range(repeats):
            for clients in clients_list:
                for endpoint in (KIOSK, APP):
                    runs[endpoint][clients].append(one_run(endpoint, clients, seconds, f"R{rep}C{clients}"))
                k, a = runs[KIOSK][clients][-1], runs[APP][clients][-1]
                log(f"app {name} rep {rep + 1}/{repeats} c={clients}: kiosk scan {k['rps']:.0f}/s "
                    f"p99 {k['p99_ms']:.0f} ms, app validation {a['rps']:.0f}/s p99 {a['p99_ms']:.0f} ms "
                    f"({a['validated']} validated, {a['check_required']} check_required, {a['refused']} refused)")
    out: dict = {}
    for endpoint in (KIOSK, APP):
        out[endpoint] = {c: {**harness.summarise_cells(runs[endpoint][c]), "verdicts": verdicts(runs[endpoint][c])}
                         for c in clients_list}
    # The app against the kiosk, per repeat (measured one after the other).
    out["app_vs_kiosk"] = {c: {
        "rps_ratio": harness.ratios([r["rps"] for r in runs[APP][c]], [r["rps"] for r in runs[KIOSK][c]]),
        "p99_ratio": harness.ratios([r["p99_ms"] for r in runs[APP][c]], [r["p99_ms"] for r in runs[KIOSK][c]]),
    } for c in clients_list}
    out["travellers_left"] = travellers.remaining()
    out["kiosk_forms_left"] = kiosk_feed.remaining()
    out["raw"] = {e: {c: runs[e][c] for c in clients_list} for e in (KIOSK, APP)}
    return out


def sqlite_world(instance: Path, quick: bool):
    """The SQLite database for this benchmark: the fixture's world, kiosk
    forms and travellers; returns (world, kiosk feed, traveller feed)."""
    from api_load import PayloadFeed

    world = fixture.build_world(f"sqlite:///{instance / 'app.sqlite3'}", instance / "app-sqlite")
    forms = POOL["sqlite_kiosk_forms"] // (4 if quick else 1)
    kiosk = PayloadFeed(fixture.load_forms(world, 0, forms, scannable=forms), "app-sqlite")
    feed = TravellerFeed(load_travellers(world, POOL["travellers"] // (4 if quick else 1)),
                         add_zone_and_post(world), "sqlite")
    return world, kiosk, feed


def run(world: fixture.World, kiosk_feed, db_pid: int, instance: Path, *, clients_list=CLIENTS,
        repeats: int = 3, seconds: float = 2.0, quick: bool = False) -> dict:
    """Both backends: PostgreSQL on the bench's world and its kiosk forms,
    SQLite on a world of its own. A backend that fails is reported under
    "failures", the other's figures kept."""
    import traceback

    out: dict = {}
    failures = {}
    t = time.monotonic()
    travellers = POOL["travellers"] // (4 if quick else 1)
    pg = TravellerFeed(load_travellers(world, travellers), add_zone_and_post(world), "postgresql")
    log(f"traveller app: {travellers} travellers on PostgreSQL in {time.monotonic() - t:.1f} s")
    backends = {"postgresql": lambda: (world, kiosk_feed, pg, {"db_pid": db_pid}),
                "sqlite": lambda: (*sqlite_world(instance, quick), {})}
    for name, make in backends.items():
        try:
            w, kiosk, feed, extra = make()
            out[name] = measure_backend(w, kiosk, feed, name, clients_list, repeats, seconds, **extra)
        except Exception as exc:  # noqa: BLE001 (the other backend's figures are still worth having)
            log(f"traveller app on {name} failed: {exc!r}")
            traceback.print_exc()
            failures[name] = f"{type(exc).__name__}: {exc}"[:500]
    if failures:
        out["failures"] = failures
    return out


# --- the report ----------------------------------------------------------------------

def markdown(app: dict) -> list[str]:
    """Section 1's sub-section: the app's validation beside the kiosk's scan."""
    lines = ["### The traveller app's path beside the kiosk's scan", "",
             ("Each row pair measured one after the other at each client count and repeat, on one API "
             "(bench/traveller_load.py): a validation is another traveller's each request, signed in "
             "beforehand, one fresh form, a GPS fix in the AMS zone and the sensor post's current token, a "
             "boarding pass for today AMS-PEK; the kiosk scans a fresh form with an Idempotency-Key. "
             f"Settings for the bench: {', '.join(f'{k}={v}' for k, v in APP_ENV.items())}. Verdicts: "
             "forms validated / sent to the desk (check_required; the random check picks 5 %) / refused, "
             "over every run of the cell. CPU ms/request: the API's workers + the database server."), "",
             ("| backend | endpoint | clients | requests/s | p50 ms | p99 ms | errors | CPU ms/req (server) | "
              "verdicts (validated / check / refused) | app/kiosk requests/s | app/kiosk p99 |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for backend, data in app.items():
        if backend == "failures":
            continue
        for clients in data[APP]:
            for endpoint in (KIOSK, APP):
                cell = data[endpoint][clients]
                v = cell["verdicts"]
                flags = [f"{cell['wrapped']} bodies reused"] if cell.get("wrapped") else []
                if v.get("unexpected"):
                    flags.append(f"{v['unexpected']} without a verdict")
                versus = data["app_vs_kiosk"][clients]
                ratios = ((fmt(versus["rps_ratio"], 2), fmt(versus["p99_ratio"], 2)) if endpoint == APP
                          else ("", ""))
                errors = str(cell["errors"]) + (f" ({', '.join(flags)})" if flags else "")
                lines.append(
                    f"| {backend} | {LABELS[endpoint]} | {clients} | {fmt(cell['rps'], 0)} | {fmt(cell['p50_ms'])} | "
                    f"{fmt(cell['p99_ms'])} | {errors} | "
                    f"{fmt(cell['cpu_ms_server'], 2)} | {v['validated']} / {v['check_required']} / {v['refused']} | "
                    f"{ratios[0]} | {ratios[1]} |")
    for backend, why in app.get("failures", {}).items():
        lines.append(f"\n**{backend} failed**: {why}")
    return lines + [""]


def summary(app: dict, clients: int = 32) -> list[str]:
    """The short table beside the targets: app and kiosk at ``clients``
    (nothing when that count was not measured)."""
    lines = ["", f"Traveller app vs kiosk scan at {clients} clients (section 1; no target set):", "",
             ("| backend | app requests/s | kiosk requests/s | app/kiosk requests/s | app p99 ms | kiosk p99 ms | "
              "app/kiosk p99 | CPU ms/req app / kiosk |"), "|---|---|---|---|---|---|---|---|"]
    for backend, data in app.items():
        if backend == "failures" or clients not in data.get(APP, {}):
            continue
        a, k, versus = data[APP][clients], data[KIOSK][clients], data["app_vs_kiosk"][clients]
        lines.append(f"| {backend} | {fmt(a['rps'], 0)} | {fmt(k['rps'], 0)} | {fmt(versus['rps_ratio'], 2)} | "
                     f"{fmt(a['p99_ms'])} | {fmt(k['p99_ms'])} | {fmt(versus['p99_ratio'], 2)} | "
                     f"{fmt(a['cpu_ms_server'], 2).split(' ')[0]} / {fmt(k['cpu_ms_server'], 2).split(' ')[0]} |")
    return lines if len(lines) > 5 else []
