"""Two source trees side by side: is a change faster, and by how much?

    .venv/bin/python bench/compare.py --before DIR [--after DIR] [--wrk]

A tree is a folder holding ``api/``, ``shared/`` and ``gunicorn.conf.py``
(a copy of the repository at some point, e.g. with a change reversed); the
after tree defaults to this checkout. Both run against one throwaway
PostgreSQL database (or SQLite, ``--backend sqlite``) with the same fixture,
so their figures are measured side by side on the same data, under the same
load from other work on the machine.

In-process (always): each tree in its own Python process serves, through the
Flask test client, ``--requests`` requests of each kind (fresh scans,
re-scans, POST /forms, GET /checks?exit_point=AMS) after a warm-up; per
request the wall milliseconds, the thread's CPU milliseconds (Python and the
driver; the database server's work is not in it) and the SQL statements
sent. The trees take turns (``--rounds``, alternating which goes first); the
figures are medians over every request of every round.

Under gunicorn (``--wrk``): both trees served at once with their own
gunicorn.conf.py; wrk drives each in turn (each of ``--kinds``: fresh
scans, re-scans, POST /forms, the queue) at ``--clients`` connections,
``--repeats`` times; requests/s, p50/p99 and CPU ms per request of the
API's workers and of PostgreSQL, as median (min-max) over the repeats.

``--profile [KIND]`` also runs py-spy (--gil) over each tree's in-process
requests of one kind (fresh scans unless named) and prints the layers and functions as bench/hotspots.py does;
``--sql`` lists the statements of one request of each kind; ``--webhooks``
registers a webhook of the shop first, so that validations and checks also
write their outbox rows, as they do wherever intermediaries listen.

A tree for "before" without changing the checkout: copy it and reverse the
change there, e.g. ``git archive HEAD | tar x -C /tmp/before``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path

import harness
import run as bench_run
from harness import log

KINDS = ("scan_fresh", "scan_rescan", "forms_post", "checks_get")
# Also measured when asked for (--kinds): fresh scans sent with an
# Idempotency-Key each, as kiosks send them.
FRESH_KINDS = ("scan_fresh", "scan_fresh_key")
LABELS = {"scan_fresh": "POST /scans (fresh form)", "scan_rescan": "POST /scans (re-scan)",
          "forms_post": "POST /forms", "checks_get": "GET /checks?exit_point=AMS",
          "scan_fresh_key": "POST /scans (fresh form, Idempotency-Key)"}
WARM_UP = 20
PROFILED = 600  # fresh scans under py-spy, per tree


# --- one tree, in-process (runs in a child process started from the tree) -----

def _inproc(config: dict) -> dict:
    """Serve ``config['requests']`` requests of each kind in-process; per
    kind the per-request wall ms, thread CPU ms and statement counts."""
    os.environ.update(config["env"])
    # bench/run.py (imported above) put the checkout running this script
    # first on sys.path: this child serves the tree it was started in.
    sys.path[:] = [str(Path.cwd())] + [p for p in sys.path if p != str(harness.ROOT)]
    from sqlalchemy import event

    from api import create_app

    app = create_app()
    # What a gunicorn worker of the tree does once its app is loaded.
    settings: dict = {}
    exec(Path("gunicorn.conf.py").read_text(), settings)
    if "post_worker_init" in settings:
        settings["post_worker_init"](None)
    engine = app.extensions["db_engine"]
    client = app.test_client()
    count = [0]
    sent: list[str] = []

    def counted(_conn, _cursor, statement, *_args):
        count[0] += 1
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", counted)
    fresh = iter(config["fresh"])
    rescans = config["rescans"]
    headers = {
        "scan_fresh": {"Authorization": f"Bearer {config['device_token']}"},
        "scan_fresh_key": {"Authorization": f"Bearer {config['device_token']}"},
        "scan_rescan": {"Authorization": f"Bearer {config['device_token']}"},
        "forms_post": {"Authorization": f"Bearer {config['shop_token']}"},
        "checks_get": {"Authorization": f"Bearer {config['officer_token']}"},
    }
    tag = config["tag"]

    def request(kind: str, i: int):
        if kind == "scan_fresh":
            return client.post("/api/v1/scans", json={"qr_payload": next(fresh)}, headers=headers[kind])
        if kind == "scan_fresh_key":
            return client.post("/api/v1/scans", json={"qr_payload": next(fresh)},
                               headers={**headers[kind], "Idempotency-Key": f"{tag}-{i}"})
        if kind == "scan_rescan":
            return client.post("/api/v1/scans", json={"qr_payload": rescans[i % len(rescans)]},
                               headers=headers[kind])
        if kind == "forms_post":
            return client.post("/api/v1/forms", json=form_body(f"{tag}-{i}"), headers=headers[kind])
        return client.get("/api/v1/checks?exit_point=AMS", headers=headers[kind])

    out = {"api_file": sys.modules["api"].__file__}
    n = config["requests"]
    # The garbage collector's full passes, timed: they land inside requests.
    full_passes: list[float] = []
    started = [0.0]

    def full_pass(phase, info):
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                full_passes.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(full_pass)
    for kind in config["kinds"]:
        for i in range(WARM_UP):
            request(kind, -1 - i)
        spy = None
        if config.get("py_spy_out"):
            # Started after the warm-up, so imports and first-request work
            # stay out of the profile.
            spy = subprocess.Popen(
                [str(harness.VENV_BIN / "py-spy"), "record", "--pid", str(os.getpid()), "--gil",
                 "--format", "raw", "--rate", "1000", "--nonblocking", "-o", config["py_spy_out"]],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        wall, cpu, statements = [], [], []
        full_passes.clear()
        for i in range(n):
            count[0] = 0
            sent.clear()
            t, c = time.perf_counter(), time.thread_time()
            response = request(kind, i)
            cpu.append((time.thread_time() - c) * 1000)
            wall.append((time.perf_counter() - t) * 1000)
            statements.append(count[0])
            if response.status_code >= 400:
                raise RuntimeError(f"{kind}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        out[kind] = {"wall_ms": wall, "cpu_ms": cpu, "statements": statements, "sql": list(sent),
                     "gc_full_ms": list(full_passes)}
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
    engine.dispose()
    return out


def form_body(invoice: str) -> dict:
    from datetime import date, timedelta

    return {"invoice_number": invoice, "purchase_date": (date.today() - timedelta(days=1)).isoformat(),
            "traveller": {"first_name": "Mei", "last_name": "Chen", "passport_number": "P1234567",
                          "passport_country": "CN", "nationality": "CN", "residence_country": "CN",
                          "date_of_birth": "1988-03-14"},
            "items": [{"description": "Wool coat", "quantity": 1, "unit_price_cents": 12100,
                       "vat_rate": 21, "category": "clothing"}]}


def wrk_endpoints(kinds) -> list[str]:
    """What ``--wrk`` drives: the kinds asked for."""
    return [kind for kind in KINDS + ("scan_fresh_key",) if kind in kinds]


def run_tree(tree: Path, config: dict) -> dict:
    """``_inproc`` in a child process whose ``api`` package is the tree's."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "_inproc"]
    env = {**os.environ, "PYTHONPATH": f"{tree}:{harness.BENCH}"}
    done = subprocess.run(cmd, input=json.dumps(config), capture_output=True, text=True, cwd=tree, env=env,
                          timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["api_file"].startswith(str(tree)):
        raise RuntimeError(f"{tree} ran {result['api_file']}, not its own api package")
    return result


# --- both trees under gunicorn ------------------------------------------------------

def gunicorn_of(tree: Path, env: dict, name: str):
    """The tree's API under its own gunicorn.conf.py, from the tree's folder."""
    return harness.gunicorn("api:create_app()", env, f"compare-{name}", tree=tree)


# --- the parent: fixture, turns, figures ----------------------------------------------

@contextmanager
def database(backend: str, instance: Path):
    if backend == "sqlite":
        yield f"sqlite:///{instance / 'compare.sqlite3'}", None
        return
    with bench_run.postgres() as (url, pid):
        yield url, pid


def _median(values) -> float:
    return statistics.median(values) if values else float("nan")


def _pct(values, q) -> float:
    return harness.percentile(values, q)


def main() -> None:
    if sys.argv[1:2] == ["_inproc"]:
        print(json.dumps(_inproc(json.loads(sys.stdin.read()))))
        return
    # The fixture is built with this checkout's api/ (the children import
    # their own tree's).
    sys.path.insert(0, str(harness.ROOT))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=harness.ROOT)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--requests", type=int, default=100, help="per kind, per tree, per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--wrk", action="store_true", help="also throughput under gunicorn + wrk")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--profile", nargs="?", const="scan_fresh", choices=KINDS + ("scan_fresh_key",),
                        help="py-spy over each tree's requests of one kind (fresh scans if not named)")
    parser.add_argument("--webhooks", action="store_true", help="the shop listens to validations and checks")
    parser.add_argument("--sql", action="store_true", help="list the statements of the last request of each kind")
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    kinds = [k for k in args.kinds.split(",") if k]
    harness.WORK.mkdir(parents=True, exist_ok=True)
    instance = Path(tempfile.mkdtemp(prefix="taxfree-compare-instance."))
    try:
        figures = measure(args, trees, kinds, instance)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    print(report(figures, kinds, args))
    if args.out:
        harness.write_json(args.out, figures)


def measure(args, trees: dict, kinds: list, instance: Path) -> dict:
    import fixture
    import hotspots

    figures: dict = {"trees": {k: str(v) for k, v in trees.items()}, "backend": args.backend,
                     "webhooks": args.webhooks,
                     "load_average_start": os.getloadavg()[0]}
    with database(args.backend, instance) as (url, db_pid):
        world = fixture.build_world(url, instance)
        fresh_kinds = max(1, sum(k in FRESH_KINDS for k in kinds))
        per_round = (args.requests + WARM_UP) * fresh_kinds
        wrk_need = args.repeats * 2 * 700 * args.seconds * fresh_kinds if args.wrk else 0
        fresh_need = 2 * args.rounds * per_round + 2 * (PROFILED + WARM_UP) + wrk_need + 400
        t = time.monotonic()
        payloads = fixture.load_forms(world, 0, fresh_need + 10_000, scannable=fresh_need, pending_checks=60)
        log(f"{fresh_need + 10_000} forms loaded in {time.monotonic() - t:.0f} s ({args.backend})")
        rescans, payloads = payloads[:300], payloads[300:]
        with fixture.environment({**world.env, "WEBHOOKS_ALLOW_PRIVATE": "true"}):
            from api import create_app

            app = create_app()
        client = app.test_client()
        for p in rescans:  # decided now: re-scans repeat the verdict
            r = client.post("/api/v1/scans", json={"qr_payload": p},
                            headers={"Authorization": f"Bearer {world.device_token}"})
            assert r.status_code == 200, r.get_json()
        if args.webhooks:
            # As in production, where refund intermediaries and shops listen:
            # every status change then also writes its outbox rows (nothing
            # delivers them here).
            r = client.post("/api/v1/webhooks", headers={"Authorization": f"Bearer {world.shop_token}"},
                            json=fixture.LISTENING_WEBHOOK)
            assert r.status_code == 201, r.get_json()
        app.extensions["db_engine"].dispose()
        base_config = {"env": world.env, "device_token": world.device_token, "shop_token": world.shop_token,
                       "officer_token": world.officer_token, "rescans": rescans, "requests": args.requests,
                       "kinds": kinds}

        def take(n: int) -> list[str]:
            nonlocal payloads
            chunk, payloads = payloads[:n], payloads[n:]
            return chunk

        samples = {name: {k: {"wall_ms": [], "cpu_ms": [], "statements": [], "gc_full_ms": []} for k in kinds}
                   for name in trees}
        figures["sql"] = {name: {} for name in trees}
        for rnd in range(args.rounds):
            order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
            for name in order:
                result = run_tree(trees[name], {**base_config, "fresh": take(per_round), "tag": f"C{rnd}{name}"})
                for k in kinds:
                    for key in ("wall_ms", "cpu_ms", "statements", "gc_full_ms"):
                        samples[name][k][key] += result[k][key]
                    figures["sql"][name][k] = result[k]["sql"]
                log(f"round {rnd + 1}/{args.rounds} {name}: " + ", ".join(
                    f"{k} {_median(result[k]['cpu_ms']):.2f} ms CPU" for k in kinds))
        figures["inprocess"] = {
            name: {k: {"statements": _median(s["statements"]), "wall_ms_median": _median(s["wall_ms"]),
                       "wall_ms_mean": statistics.mean(s["wall_ms"]), "wall_ms_p99": _pct(s["wall_ms"], 99),
                       "wall_ms_max": max(s["wall_ms"]), "cpu_ms_median": _median(s["cpu_ms"]),
                       "cpu_ms_mean": statistics.mean(s["cpu_ms"]), "n": len(s["wall_ms"]),
                       "gc_full_passes": len(s["gc_full_ms"]), "gc_full_ms_total": sum(s["gc_full_ms"]),
                       "gc_full_ms_max": max(s["gc_full_ms"], default=0.0)}
                   for k, s in per.items()}
            for name, per in samples.items()}

        if args.profile:
            figures["profile"], figures["profile_kind"] = {}, args.profile
            for name, tree in trees.items():
                out = harness.WORK / f"compare-{name}.raw"
                run_tree(tree, {**base_config, "fresh": take(PROFILED + WARM_UP), "kinds": [args.profile],
                                "requests": PROFILED, "tag": f"P{name}", "py_spy_out": str(out)})
                figures["profile"][name] = hotspots.summarise(out, top=12)

        if args.wrk:
            endpoints = wrk_endpoints(kinds)
            figures["wrk"] = {name: {e: [] for e in endpoints} for name in trees}
            purchase = (date.today() - timedelta(days=1)).isoformat()
            feed_file = harness.WORK / "compare-payloads.jsonl"
            rescan_file = harness.WORK / "compare-rescans.jsonl"
            rescan_file.write_text("".join(json.dumps({"qr_payload": p}) + "\n" for p in rescans))
            with ExitStack() as stack:
                servers = {name: stack.enter_context(gunicorn_of(tree, world.env, name))
                           for name, tree in trees.items()}
                for name, server in servers.items():  # warm-up: every worker imports and connects
                    harness.wrk(server.base + "/api/v1/scans", "payloads.lua", 8, 1,
                                [str(rescan_file), world.device_token])
                for rep in range(args.repeats):
                    order = list(trees) if rep % 2 == 0 else list(reversed(trees))
                    for endpoint in endpoints:
                        for name in order:
                            server = servers[name]
                            cpu = {"api": server.pid, **({"db": db_pid} if db_pid else {})}
                            if endpoint == "checks_get":
                                r = harness.wrk(server.base + "/api/v1/checks?exit_point=AMS", "get.lua",
                                                args.clients, args.seconds, [world.officer_token], cpu_of=cpu)
                            elif endpoint == "forms_post":
                                # Invoice numbers unique to the tree and the repeat.
                                tag = f"W{name[0]}{rep}X{secrets.token_hex(2)}".upper()
                                r = harness.wrk(server.base + "/api/v1/forms", "forms.lua", args.clients,
                                                args.seconds, [tag, world.shop_token, purchase], cpu_of=cpu)
                            else:
                                fresh = endpoint in FRESH_KINDS
                                if fresh:
                                    chunk = payloads[:3000]
                                    feed_file.write_text("".join(json.dumps({"qr_payload": p}) + "\n"
                                                                 for p in chunk))
                                    body_file = feed_file
                                else:
                                    body_file = rescan_file
                                # A key of its own for every scan, as kiosks send them.
                                keys = ([f"K{name[0]}{rep}X{secrets.token_hex(2)}".upper()]
                                        if endpoint == "scan_fresh_key" else [])
                                r = harness.wrk(server.base + "/api/v1/scans", "payloads.lua", args.clients,
                                                args.seconds, [str(body_file), world.device_token, *keys],
                                                cpu_of=cpu)
                                if fresh:
                                    if r.get("wrapped"):
                                        raise RuntimeError("fresh payloads ran out: raise the pool")
                                    take(r["requests"] + 2 * args.clients + 8)
                            if r["errors"]:
                                log(f"{name} {endpoint}: {r['errors']} errors {r['error_detail']}")
                            figures["wrk"][name][endpoint].append(r)
                            log(f"wrk rep {rep + 1} {name} {endpoint}: {r['rps']:.0f}/s p99 {r['p99_ms']:.0f} ms "
                                + " ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms_per_request"].items()))
    figures["load_average_end"] = os.getloadavg()[0]
    return figures


def report(figures: dict, kinds, args) -> str:
    lines = [f"backend {figures['backend']}; load average {figures['load_average_start']:.2f} at the start, "
             f"{figures['load_average_end']:.2f} at the end",
             "", f"In-process, {args.requests} requests x {args.rounds} rounds per tree (the trees take turns); "
                 "statements and CPU ms: medians; wall ms: median, mean, p99, max:", "",
             "| request | statements before | after | CPU ms before | after | ratio | wall ms before | after |",
             "|---|---|---|---|---|---|---|---|"]
    b, a = figures["inprocess"]["before"], figures["inprocess"]["after"]

    def wall(f):
        return f"{f['wall_ms_median']:.2f} / {f['wall_ms_mean']:.2f} / {f['wall_ms_p99']:.1f} / {f['wall_ms_max']:.0f}"

    for k in kinds:
        lines.append(f"| {LABELS[k]} | {b[k]['statements']:g} | {a[k]['statements']:g} | "
                     f"{b[k]['cpu_ms_median']:.2f} | {a[k]['cpu_ms_median']:.2f} | "
                     f"{a[k]['cpu_ms_median'] / b[k]['cpu_ms_median']:.2f} | {wall(b[k])} | {wall(a[k])} |")

    def passes(f):
        return f"{f['gc_full_passes']} taking {f['gc_full_ms_total']:.0f} ms (longest {f['gc_full_ms_max']:.1f})"

    lines += ["", "The garbage collector's full passes during those requests, before / after: " + "; ".join(
        f"{LABELS[k]}: {passes(b[k])} / {passes(a[k])}" for k in kinds) + "."]
    if "wrk" in figures:
        lines += ["", f"gunicorn + wrk, {args.clients} clients, {args.repeats} x {args.seconds} s per tree; "
                      "median (min-max):", "",
                  "| request | tree | requests/s | p50 ms | p99 ms | API CPU ms/req | DB CPU ms/req |",
                  "|---|---|---|---|---|---|---|"]
        for endpoint in figures["wrk"]["after"]:
            for name in ("before", "after"):
                runs = figures["wrk"][name][endpoint]
                cell = harness.summarise_cells(runs)
                cpu = cell["cpu_ms_per_request"]
                lines.append(f"| {LABELS[endpoint]} | {name} | {harness.fmt(cell['rps'], 0)} | "
                             f"{harness.fmt(cell['p50_ms'])} | {harness.fmt(cell['p99_ms'])} | "
                             f"{harness.fmt(cpu.get('api'), 2)} | {harness.fmt(cpu.get('db'), 2)} |")
    if args.sql:
        for name in ("before", "after"):
            for k in kinds:
                lines += ["", f"{name}, {LABELS[k]}, the last request's statements:", "```"]
                lines += [s[:160] for s in figures["sql"][name][k]] + ["```"]
    if "profile" in figures:
        for name, p in figures["profile"].items():
            lines += ["", f"py-spy --gil, {name}, in-process {LABELS[figures['profile_kind']]} "
                          f"({p['samples']} samples):",
                      "layers: " + "; ".join(f"{k} {v}%" for k, v in p["layers"]),
                      "app functions: " + "; ".join(f"{k} {v}%" for k, v in p["app_functions"]),
                      "self: " + "; ".join(f"{k} {v}%" for k, v in p["self"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
