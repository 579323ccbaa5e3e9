"""make soak: a mixed load on the API for 10 minutes, then errors, memory
growth and latency drift, and whether what the load was told was stored.

    .venv/bin/python bench/soak.py [--seconds 600] [--database postgresql|sqlite] [--rate 1.0]

The API runs under gunicorn with the repository's gunicorn.conf.py
(production settings) on a throwaway PostgreSQL cluster (or SQLite), with
``flask deliver-webhooks --forever`` sending its webhooks to a receiver on
127.0.0.1. ``soak_load`` sends the mix: tills issuing forms (some in
batches), kiosks scanning them and scanning again, officers reading the
desk's queue and deciding checks, the intermediary following the change
feed and paying refunds, travellers looking their form up, and requests
that must be refused. Every 10 s the run samples the memory of each
gunicorn worker and the master, the webhook worker and the database's
backends, the database connections and the workers' open files.

Afterwards: every form that got a 201 exists, every scan that got an
answer is in the audit trail, the webhooks were all delivered (after a
short drain), and ``flask verify-audit`` passes where the API has it. The
verdicts (thresholds in THRESHOLDS, stated in the report) decide the exit
code. Results: bench/results/soak.md and soak.json for a full run on
PostgreSQL; other runs (shorter, SQLite) write soak-<database>-<seconds>s.*
beside them, which git ignores.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import standardwebhooks

import harness
from harness import log

sys.path.insert(0, str(harness.ROOT))  # this checkout's api/ and shared/, whatever the venv points at

import fixture  # noqa: E402
import run as bench_run  # noqa: E402
import soak_load  # noqa: E402
import soak_report  # noqa: E402

FULL_SECONDS = 600
FIXTURE_FORMS = 10_000  # history already in the tables, as in a database in use
FIXTURE_PENDING_CHECKS = 40  # travellers already waiting at the AMS desk
# The verdicts' default thresholds (--max-* override them); the report states them.
THRESHOLDS = {
    "errors": 0,             # 5xx, connection errors, timeouts, unexpected statuses, wrong answers
    "rss_growth_pct": 10.0,  # per process kind, last bucket over the first after warm-up
    "p99_drift": 1.5,        # all requests' p99, last bucket over the first after warm-up
}
EVENT_TYPES = ("form.validated", "form.partially_validated", "form.rejected", "form.check_required",
               "form.expired", "form.cancelled", "form.refunded")


# --- processes' memory, from /proc ----------------------------------------------------------

def _status(pid: int) -> dict[str, int] | None:
    """VmRSS, RssAnon, RssShmem of a process, in KiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssShmem"):
            out[name] = int(value.split()[0])
    return out


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(out)


def _fds(pid: int) -> list[str]:
    folder = Path(f"/proc/{pid}/fd")
    out = []
    try:
        for fd in folder.iterdir():
            try:
                out.append(os.readlink(fd))
            except OSError:
                pass
    except OSError:
        pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


MIB = 1024  # KiB per MiB


class Sampler:
    """Every ``every`` seconds, in a thread: the memory of the API's
    processes and the database's, connections and open files."""

    def __init__(self, started: float, master: int, webhook_worker: int, *, postmaster: int | None,
                 sqlite_file: str | None, every: float = 10.0):
        self.started, self.master, self.webhook_worker = started, master, webhook_worker
        self.postmaster, self.sqlite_file, self.every = postmaster, sqlite_file, every
        self.samples: list[dict] = []
        self.workers_seen: set[int] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        self.samples.append(self.sample())  # the end of the last bucket

    def _loop(self):
        while True:
            self.samples.append(self.sample())
            if self.stop.wait(self.every):
                return

    def sample(self) -> dict:
        workers = {}
        for pid in _children(self.master):
            memory = _status(pid)
            if memory:
                self.workers_seen.add(pid)
                workers[pid] = {"rss_mib": memory["VmRSS"] / MIB, "private_mib": memory["RssAnon"] / MIB,
                                "open_files": len(_fds(pid))}
        master, hooks = _status(self.master) or {}, _status(self.webhook_worker) or {}
        trees = {"API (gunicorn)": self.master, "webhook worker": self.webhook_worker,
                 **({"PostgreSQL": self.postmaster} if self.postmaster else {})}
        sample = {
            "t_s": round(time.monotonic() - self.started, 1),
            # Other work on the machine: read a latency spike against it.
            "load_average": round(os.getloadavg()[0], 2),
            # CPU seconds so far: per bucket, CPU per request tells a request
            # that became more expensive from one that waited for a core.
            "cpu_s": harness.cpu_seconds(trees),
            "workers": workers,
            "master_rss_mib": master.get("VmRSS", 0) / MIB,
            "webhook_worker_rss_mib": hooks.get("VmRSS", 0) / MIB,
            "webhook_worker_open_files": len(_fds(self.webhook_worker)),
        }
        if self.postmaster:
            # Client backends are "postgres: USER DATABASE HOST(PORT) STATE".
            backends = {pid: _status(pid) for pid in _children(self.postmaster)
                        if _cmdline(pid).startswith("postgres: taxfree ")}
            memory = {pid: m for pid, m in backends.items() if m}
            sample.update({
                "db_connections": len(backends),
                "pg_backends_rss_mib": sum(m["VmRSS"] for m in memory.values()) / MIB,
                # RSS counts every shared-buffer page a backend has touched so
                # far (it climbs towards shared_buffers on any workload): the
                # backends' private memory is what a leak would grow.
                "pg_backends_private_mib": sum(m["RssAnon"] for m in memory.values()) / MIB,
                "pg_backends": {pid: {"rss_mib": m["VmRSS"] / MIB, "private_mib": m["RssAnon"] / MIB}
                                for pid, m in memory.items()},
            })
        else:
            # SQLite has no server: its connections are the API's and the
            # webhook worker's open handles on the database file.
            sample["db_connections"] = sum(
                _fds(pid).count(self.sqlite_file) for pid in [*workers, self.webhook_worker])
        return sample


# --- the webhook receiver -----------------------------------------------------------------------

class Receiver:
    """A receiver on 127.0.0.1 that checks each delivery's signature and
    counts what arrived (by webhook-id: deliveries are at least once)."""

    def __init__(self):
        self.secret: str | None = None
        self.message_ids: Counter = Counter()
        self.types: Counter = Counter()
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    event = standardwebhooks.Webhook(receiver.secret).verify(body, dict(self.headers))
                except Exception:  # any failure to verify is a refusal, as a receiver would answer
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.send_response(401)
                else:
                    with receiver.lock:
                        receiver.message_ids[self.headers["webhook-id"]] += 1
                        receiver.types[event["type"]] += 1
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):  # no line per delivery
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/taxfree"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# --- setting up --------------------------------------------------------------------------------------

@contextmanager
def database(kind: str, instance: Path):
    """(SQLAlchemy URL, postmaster pid or None, SQLite file or None)."""
    if kind == "postgresql":
        with bench_run.postgres() as (url, pid):
            yield url, pid, None
    else:
        path = instance / "soak.sqlite3"
        yield f"sqlite:///{path}", None, str(path)


def _post(base: str, path: str, token: str, body: dict) -> dict:
    response = requests.post(base + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
    return response.json()


def _login(base: str, username: str) -> str:
    response = requests.post(base + "/api/v1/auth/token", json={"username": username, "password": fixture.PASSWORD},
                             timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def parties(base: str, world: fixture.World) -> tuple[soak_load.Parties, str]:
    """Beyond the bench's world: the intermediary's user, a second officer
    (RTM), two more kiosks, all through the API; returns the parties and
    the intermediary's login for the webhook."""
    root = _login(base, "root")
    _post(base, "/api/v1/users", root, {"username": "refunds", "password": fixture.PASSWORD,
                                        "role": "intermediary", "intermediary_id": world.intermediary_id})
    _post(base, "/api/v1/users", root, {"username": "officer2", "password": fixture.PASSWORD, "role": "officer"})
    kiosks = [("AMS", world.device_token)]
    for name, code in (("kiosk-2", "AMS"), ("kiosk-rtm", "RTM")):
        kiosks.append((code, _post(base, "/api/v1/devices", root, {"name": name, "kind": "kiosk",
                                                                  "exit_point": code})["token"]))
    refunds = _login(base, "refunds")
    officers = {"AMS": world.officer_token, "RTM": _login(base, "officer2")}
    for code, token in officers.items():  # each on duty at their desk
        _post(base, "/api/v1/duty", token, {"exit_point": code})
    return soak_load.Parties(shop=world.shop_token, intermediary=refunds, officers=officers,
                             kiosks=kiosks), refunds


@contextmanager
def webhook_worker(env: dict):
    """``flask deliver-webhooks --forever``, stopped with Ctrl+C (SIGINT) as
    an operator would."""
    logfile = open(harness.WORK / "soak-webhook-worker.log", "w")
    process = subprocess.Popen([str(harness.VENV_BIN / "flask"), "--app", "api", "deliver-webhooks", "--forever"],
                               cwd=harness.ROOT, env={**os.environ, **env}, stdout=logfile,
                               stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        harness.stop(process, signal.SIGINT, wait=30)
        logfile.close()


# --- after the load: what was stored ---------------------------------------------------------------------

def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _pending_deliveries(engine, webhook_id: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :w "
                                 "AND status = 'pending'"), {"w": webhook_id}).scalar_one()


def drain(engine, webhook_id: str, seconds: float) -> tuple[int, float]:
    """Wait until the worker has sent every delivery (or ``seconds`` pass);
    returns the deliveries still pending and the time waited."""
    started = time.monotonic()
    while True:
        pending = _pending_deliveries(engine, webhook_id)
        waited = time.monotonic() - started
        if pending == 0 or waited >= seconds:
            return pending, waited
        time.sleep(1)


def consistency(engine, state: soak_load.State, webhook_id: str, receiver: Receiver) -> dict:
    from sqlalchemy import bindparam, text

    issued = list(state.issued)
    found, scanned_events = set(), Counter()
    with engine.connect() as conn:
        forms_query = text("SELECT id FROM forms WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
        events_query = text("SELECT form_id, count(*) FROM events WHERE type = 'form.scanned' "
                            "AND form_id IN :ids GROUP BY form_id").bindparams(bindparam("ids", expanding=True))
        for chunk in _chunks(issued):
            found.update(r[0] for r in conn.execute(forms_query, {"ids": chunk}))
        acknowledged = list(state.acknowledged_scans)
        for chunk in _chunks(acknowledged):
            scanned_events.update(dict(conn.execute(events_query, {"ids": chunk}).all()))
        deliveries = dict(conn.execute(text(
            "SELECT status, count(*) FROM webhook_deliveries WHERE webhook_id = :w GROUP BY status"),
            {"w": webhook_id}).all())
        created = conn.execute(text(
            "SELECT count(*) FROM events WHERE form_id IS NOT NULL AND type IN :types").bindparams(
            bindparam("types", expanding=True)), {"types": list(EVENT_TYPES)}).scalar_one()
        attempts = conn.execute(text(
            "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d ON a.delivery_id = d.id "
            "WHERE d.webhook_id = :w"), {"w": webhook_id}).scalar_one()
    missing_scans = sum(max(0, n - scanned_events.get(f, 0)) for f, n in state.acknowledged_scans.items())
    unanswered_scans = sum(max(0, scanned_events.get(f, 0) - n) for f, n in state.acknowledged_scans.items())
    with receiver.lock:
        received, duplicates = len(receiver.message_ids), sum(n - 1 for n in receiver.message_ids.values())
        types, bad = dict(receiver.types), receiver.bad_signatures
    return {
        "forms_issued": len(issued),
        "forms_missing": len(issued) - len(found),
        "scans_acknowledged": sum(state.acknowledged_scans.values()),
        "scans_missing_from_events": missing_scans,
        # Scans the API recorded whose answer the load never got (a timeout):
        # not lost, only unacknowledged.
        "scan_events_without_answer": unanswered_scans,
        "webhooks": {
            "status_change_events_created": created,
            "deliveries_created": sum(deliveries.values()),
            "deliveries_by_status": deliveries,
            "attempts": attempts,
            "received_unique": received,
            "received_again": duplicates,
            "received_by_type": types,
            "bad_signatures": bad,
        },
    }


def verify_audit(env: dict) -> dict:
    """``flask --app api verify-audit``, if this version of the API has it."""
    flask = [str(harness.VENV_BIN / "flask"), "--app", "api"]
    env = {**os.environ, **env}
    listing = subprocess.run(flask + ["--help"], cwd=harness.ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
    if "verify-audit" not in listing.stdout:
        return {"available": False}
    result = subprocess.run(flask + ["verify-audit"], cwd=harness.ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    return {"available": True, "exit_code": result.returncode,
            "output": (result.stdout + result.stderr).strip().splitlines()[-8:]}


def gunicorn_log(path: Path) -> dict:
    """What gunicorn wrote to its log: tracebacks, errors, workers restarted."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "error_lines": sum("[ERROR]" in l or "[CRITICAL]" in l for l in lines),
        "worker_timeouts": sum("WORKER TIMEOUT" in l for l in lines),
        "first_errors": [l[:300] for l in lines if "[ERROR]" in l or "[CRITICAL]" in l][:5],
    }


# --- the run -----------------------------------------------------------------------------------------------

def bucket_seconds(seconds: int) -> int:
    """A minute; a shorter run gets shorter buckets (at least 10 s) so it
    still has its warm-up buckets and several after them."""
    if seconds >= 300:
        return 60
    return max(10, seconds // 6 // 10 * 10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS") or FULL_SECONDS),
                        help="how long the load runs (default 600, or SOAK_SECONDS)")
    parser.add_argument("--database", choices=("postgresql", "sqlite"),
                        default=os.environ.get("SOAK_DATABASE") or "postgresql")
    parser.add_argument("--rate", type=float, default=1.0, help="multiplies every party's rate (soak_load.RATES)")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--drain-seconds", type=float, default=60.0,
                        help="how long the webhook worker may take to send what is left after the load")
    parser.add_argument("--max-errors", type=int, default=THRESHOLDS["errors"])
    parser.add_argument("--max-rss-growth", type=float, default=THRESHOLDS["rss_growth_pct"], help="percent")
    parser.add_argument("--max-p99-drift", type=float, default=THRESHOLDS["p99_drift"], help="times")
    parser.add_argument("--name", help="results file name (default soak, or soak-DATABASE-SECONDSs)")
    args = parser.parse_args()
    bucket = bucket_seconds(args.seconds)
    if args.seconds < (soak_report.WARMUP_BUCKETS + 2) * bucket:
        parser.error("--seconds must be at least 40: the warm-up buckets and two more")
    name = args.name or ("soak" if args.database == "postgresql" and args.seconds >= FULL_SECONDS
                         else f"soak-{args.database}-{args.seconds}s")
    thresholds = {"errors": args.max_errors, "rss_growth_pct": args.max_rss_growth, "p99_drift": args.max_p99_drift}
    harness.WORK.mkdir(parents=True, exist_ok=True)
    results = {"machine": harness.machine(), "gunicorn": bench_run.gunicorn_settings(), "database": args.database,
               "seconds": args.seconds, "bucket_seconds": bucket, "rate": args.rate,
               "rates_per_s": {k: v * args.rate for k, v in soak_load.RATES.items()},
               "sample_seconds": args.sample_seconds, "thresholds": thresholds,
               "fixture": {"forms": FIXTURE_FORMS, "pending_checks": FIXTURE_PENDING_CHECKS}}
    log(f"soak: {args.seconds} s on {args.database}, buckets of {bucket} s, gunicorn {results['gunicorn']}")
    instance = Path(tempfile.mkdtemp(prefix="taxfree-soak-instance."))
    wall = time.monotonic()
    try:
        soak(args, instance, results)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    results["wall_seconds"] = round(time.monotonic() - wall)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    soak_report.summarise(results)
    markdown = soak_report.markdown(results)
    (harness.RESULTS / f"{name}.md").write_text(markdown)
    harness.write_json(harness.RESULTS / f"{name}.json", {k: v for k, v in results.items() if k != "raw"})
    harness.write_json(harness.WORK / f"{name}-raw.json", results)
    print(markdown)
    log(f"wrote bench/results/{name}.md and {name}.json; "
        + ("every threshold met" if results["passed"] else "THRESHOLDS MISSED: "
           + ", ".join(v["check"] for v in results["verdicts"] if not v["ok"])))
    return 0 if results["passed"] else 1


def soak(args, instance: Path, results: dict) -> None:
    # Tokens outlive the run; the webhook goes to 127.0.0.1 (the receiver
    # below), which production refuses.
    extra = {"ACCESS_TOKEN_TTL": str(max(3600, args.seconds + 3600)), "WEBHOOKS_ALLOW_PRIVATE": "true"}
    with database(args.database, instance) as (url, postmaster, sqlite_file):
        t = time.monotonic()
        with fixture.environment(extra):
            world = fixture.build_world(url, instance)
        # Made as of a month ago: the fixture validates history forms up to
        # 30 days after they were made, and a form stamped in the future
        # would sit in the intermediary's change feed ahead of the run's own.
        fixture.load_forms(world, 0, FIXTURE_FORMS, pending_checks=FIXTURE_PENDING_CHECKS,
                           now=datetime.now(timezone.utc) - timedelta(days=31))
        log(f"fixture: {FIXTURE_FORMS} forms in {time.monotonic() - t:.1f} s")
        env = {**world.env, **extra}
        from sqlalchemy import create_engine

        engine = create_engine(url)
        try:
            with harness.gunicorn("api:create_app()", env, f"soak-{args.database}") as api, Receiver() as receiver:
                the_parties, refunds = parties(api.base, world)
                hook = _post(api.base, "/api/v1/webhooks", refunds, {"url": receiver.url, "events": list(EVENT_TYPES)})
                receiver.secret = hook["secret"]
                with webhook_worker(env) as worker:
                    started = time.monotonic()
                    recorder = soak_load.Recorder(started)
                    load = soak_load.Load(api.base, the_parties, recorder, rate=args.rate)
                    cpu_of = {"API (gunicorn)": api.pid, "webhook worker": worker.pid,
                              **({"PostgreSQL": postmaster} if postmaster else {})}
                    cpu_before, own_before = harness.cpu_seconds(cpu_of), time.process_time()
                    with Sampler(started, api.pid, worker.pid, postmaster=postmaster, sqlite_file=sqlite_file,
                                 every=args.sample_seconds) as sampler:
                        log(f"load for {args.seconds} s against {api.base}")
                        asyncio.run(_progress(load, args.seconds, recorder))
                    cpu_after = harness.cpu_seconds(cpu_of)
                    results["cpu_seconds"] = {**{k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_of},
                                              "load generator": round(time.process_time() - own_before, 1)}
                    pending_at_end = _pending_deliveries(engine, hook["id"])
                    pending, waited = drain(engine, hook["id"], args.drain_seconds)
                    log(f"webhooks: {pending_at_end} pending when the load stopped, {pending} after {waited:.0f} s")
                    worker_exit = worker.poll()
            results["gunicorn_log"] = gunicorn_log(harness.WORK / f"gunicorn-soak-{args.database}.log")
            results["consistency"] = consistency(engine, load.state, hook["id"], receiver)
            results["consistency"]["webhooks"].update(
                pending_when_load_stopped=pending_at_end, pending_after_drain=pending, drain_seconds=round(waited, 1),
                worker_exited_during_run=worker_exit)
        finally:
            engine.dispose()
        results["consistency"]["verify_audit"] = verify_audit(env)
    results["raw"] = {"outcomes": [o.__dict__ for o in recorder.outcomes]}
    results["samples"] = sampler.samples
    results["workers_started"] = len(sampler.workers_seen)
    results["error_samples"] = recorder.samples
    results["expected_4xx"] = dict(recorder.expected_4xx)
    s = load.state
    results["activity"] = {
        "forms_issued": len(s.issued), "forms_via_batch": s.via_batch, "scan_verdicts": dict(s.scan_verdicts),
        "decisions": dict(s.decisions), "feed_changes_read": s.feed_changes, "refunds_paid": s.refunded,
        "forms_cancelled": len(s.cancelled), "status_lookups": dict(s.status_lookups),
        "travellers_not_scanned_at_end": len(s.waiting), "idle_ticks": dict(s.skipped),
        "connections_opened": load.connections_opened(),
    }


async def _progress(load: soak_load.Load, seconds: float, recorder: soak_load.Recorder) -> None:
    """The load, with a line a minute on how it goes."""
    runner = asyncio.create_task(load.run(seconds))
    while not runner.done():
        await asyncio.wait({runner}, timeout=60)
        if not runner.done():
            done = recorder.outcomes
            errors = sum(1 for o in done if o.error)
            log(f"{time.monotonic() - recorder.started:.0f} s: {len(done)} requests, {errors} errors")
    await runner


if __name__ == "__main__":
    sys.exit(main())
