"""make bench: run every benchmark, write bench/results/latest.md and
latest.json, print the table.

    .venv/bin/python bench/run.py [--quick] [--only api,app,growth,qr,verdict,bulk,mrz] [--clients 32]

--quick shortens every run (a smoke test of the suite, not figures to
keep: its results go to bench/results/quick.md and quick.json).
--only runs some benchmarks (``scan_to_verdict`` is another name for
``verdict``); their sections replace those of the existing results file,
the other sections are kept from the run that wrote them, and the results
say which run each section comes from.
--clients runs the API benchmarks (api, app) at fewer client counts (their
sections then have only those rows).
The API benchmarks need wrk and PostgreSQL (bench/system-packages.sh
installs them); qr and mrz need neither.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import harness
from harness import log

sys.path.insert(0, str(harness.ROOT))  # this checkout's api/ and shared/, whatever the venv points at

import api_load  # noqa: E402
import bulk  # noqa: E402
import fixture  # noqa: E402
import growth  # noqa: E402
import hotspots  # noqa: E402
import mrz_read  # noqa: E402
import qr_decode  # noqa: E402
import report  # noqa: E402
import scan_to_verdict  # noqa: E402
import traveller_load  # noqa: E402

# --only names -> the results' top-level keys each one writes.
SECTIONS = {"api": ("api", "profile"), "app": ("app",), "growth": ("growth",), "qr": ("qr",),
            "verdict": ("scan_to_verdict",), "bulk": ("bulk",), "mrz": ("mrz",)}
ALIASES = {"scan_to_verdict": "verdict"}

# Fresh forms for the API benchmark, per backend: enough for the fastest
# plausible scan rate over every run (PayloadFeed flags any shortfall). On
# PostgreSQL the minimal scan (bench/minimal_app.py) takes its fresh forms
# from the same feed, several times faster than the API.
SCAN_POOL = {"postgresql": 130_000, "sqlite": 70_000}


@contextmanager
def postgres():
    """A throwaway PostgreSQL cluster (scripts/throwaway-postgres.sh):
    yields (SQLAlchemy URL, postmaster pid)."""
    script = harness.ROOT / "scripts" / "throwaway-postgres.sh"
    directory = Path(tempfile.mkdtemp(prefix="taxfree-bench-pg."))
    try:
        url = subprocess.run([str(script), "start", str(directory)], check=True,
                             capture_output=True, text=True).stdout.strip()
        yield url, harness.postmaster_pid(directory)
    finally:
        subprocess.run([str(script), "stop", str(directory)], capture_output=True)


def attempt(results: dict, name: str, fn):
    """Run one benchmark; a failure is recorded in the results (and shown
    in the report) instead of losing the others' figures."""
    try:
        results[name] = fn()
    except Exception as exc:  # the suite runs against a moving code base
        log(f"{name} failed: {exc!r}")
        traceback.print_exc()
        results.setdefault("failures", {})[name] = f"{type(exc).__name__}: {exc}"[:500]


def gunicorn_settings() -> dict:
    namespace: dict = {}
    exec(harness.GUNICORN_CONF.read_text(), namespace)
    settings = {k: namespace[k] for k in ("worker_class", "workers", "threads", "keepalive") if k in namespace}
    if isinstance(settings.get("worker_class"), type):  # a class defined in the file: its name
        settings["worker_class"] = settings["worker_class"].__name__
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="comma-separated: " + ", ".join(SECTIONS) + " (scan_to_verdict = verdict)")
    parser.add_argument("--clients", default=",".join(map(str, api_load.CLIENTS)),
                        help="API benchmark: comma-separated client counts (default: %(default)s); "
                             "e.g. --clients 32 for the cells the targets are read at")
    args = parser.parse_args()
    only = {ALIASES.get(name, name) for name in args.only.split(",") if name}
    try:
        args.clients = tuple(sorted({int(c) for c in args.clients.split(",") if c}))
    except ValueError:
        parser.error("--clients takes comma-separated numbers, e.g. 32 or 8,32")
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients takes at least one count of 1 or more")
    if only - set(SECTIONS):
        parser.error(f"unknown --only {', '.join(sorted(only - set(SECTIONS)))} (known: {', '.join(SECTIONS)})")
    seconds, repeats, target_repeats = (1, 1, 1) if args.quick else (2, 3, 7)
    if only & {"api", "app", "growth"}:  # the ones that load the API with wrk
        harness.need("wrk")
    harness.WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = {"machine": harness.machine(), "gunicorn": gunicorn_settings(), "quick": args.quick,
               "cell_seconds": seconds, "repeats": repeats,
               "target_repeats": target_repeats, "target_clients": api_load.TARGET_CLIENTS}
    log(f"gunicorn settings: {results['gunicorn']}")
    instance = Path(tempfile.mkdtemp(prefix="taxfree-bench-instance."))
    try:
        run_all(args, only, seconds, repeats, target_repeats, instance, results)
    finally:
        shutil.rmtree(instance, ignore_errors=True)

    results["wall_seconds"] = time.monotonic() - started
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    name = "quick" if args.quick else "latest"
    results["provenance"] = {key: run_facts(results, args.only) for part in only for key in SECTIONS[part]}
    if only != set(SECTIONS):
        results = merge_into(harness.RESULTS / f"{name}.json", results, only)
    # Every figure on disk before the report is made from them.
    harness.write_json(harness.WORK / f"{name}-raw.json", results)
    harness.write_json(harness.RESULTS / f"{name}.json", report.without_raw(results))
    markdown = report.markdown(results)
    (harness.RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)
    log(f"wrote bench/results/{name}.md and {name}.json in {results['wall_seconds']:.0f} s")


def run_facts(results: dict, only: str) -> dict:
    """Which run wrote a section: shown in the results when they merge runs."""
    m = results["machine"]
    return {"date": m["date"], "git_commit": m["git_commit"], "only": only,
            "load_average": [m["load_average_start"][0], m["load_average_end"][0]],
            "wall_seconds": round(results["wall_seconds"])}


def _int_keys(value):
    """JSON turned the API cells' client counts into strings: back to ints."""
    if isinstance(value, dict):
        return {int(k) if isinstance(k, str) and k.isdigit() else k: _int_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_int_keys(v) for v in value]
    return value


def merge_into(path: Path, results: dict, only: set) -> dict:
    """A run of some benchmarks (--only) merged into the results file it
    would overwrite: its sections (and failures) replace those there, the
    other sections stay, each with the run it comes from."""
    if not path.exists():
        return results
    previous = _int_keys(json.loads(path.read_text()))
    if previous.get("quick") != results["quick"]:
        return results
    fresh = {key for part in only for key in SECTIONS[part]}
    earlier = previous.get("provenance") or {
        key: {"date": previous["machine"]["date"], "git_commit": previous["machine"]["git_commit"],
              "only": "all (full run)",
              "load_average": [previous["machine"]["load_average_start"][0],
                               previous["machine"].get("load_average_end", ["?"])[0]],
              "wall_seconds": round(previous.get("wall_seconds", 0))}
        for keys in SECTIONS.values() for key in keys if key in previous}
    merged = {k: v for k, v in previous.items() if k not in fresh and k not in ("targets", "failures")}
    merged.update({k: v for k, v in results.items() if k != "failures"})
    failures = {k: v for k, v in previous.get("failures", {}).items() if k not in fresh}
    failures.update(results.get("failures", {}))
    if failures:
        merged["failures"] = failures
    merged["provenance"] = {**{k: v for k, v in earlier.items() if k not in fresh}, **results["provenance"]}
    log(f"merged into the existing {path.name}: {', '.join(sorted(fresh))} from this run, "
        f"{', '.join(sorted(k for k in merged['provenance'] if k not in fresh))} kept")
    return merged


def run_server_benchmarks(args, only: set, seconds: int, repeats: int, target_repeats: int, instance: Path,
                          results: dict) -> None:
    """The benchmarks that need the API and a PostgreSQL fixture."""
    with postgres() as (pg_url, pg_pid):
        world = fixture.build_world(pg_url, instance)
        pool = {backend: size // (8 if args.quick else 1) for backend, size in SCAN_POOL.items()}
        t = time.monotonic()
        pg_feed = api_load.PayloadFeed(fixture.load_forms(
            world, 0, pool["postgresql"] + 10_000, scannable=pool["postgresql"], pending_checks=60), "postgresql")
        log(f"PostgreSQL fixture: {pool['postgresql'] + 10_000} forms in {time.monotonic() - t:.1f} s")
        if "api" in only:
            results["api"] = {}

            def sqlite_world():
                w = fixture.build_world(f"sqlite:///{instance / 'bench.sqlite3'}", instance / "sqlite")
                payloads = fixture.load_forms(w, 0, pool["sqlite"] + 10_000, scannable=pool["sqlite"],
                                              pending_checks=60)
                return w, api_load.PayloadFeed(payloads, "sqlite")

            # The floors run on PostgreSQL only (plain psycopg), on the API's database.
            with harness.gunicorn("bare_app:app", {}, "bare", pythonpath=harness.BENCH) as bare, \
                    harness.gunicorn("minimal_app:app", world.env, "minimal", pythonpath=harness.BENCH) as floor:
                attempt(results["api"], "postgresql", lambda: api_load.measure_backend(
                    world, pg_feed, bare, "postgresql", clients_list=args.clients, repeats=repeats,
                    target_repeats=target_repeats, seconds=seconds, db_pid=pg_pid, floor=floor))
                attempt(results["api"], "sqlite", lambda: api_load.measure_backend(
                    *sqlite_world(), bare, "sqlite", clients_list=args.clients, repeats=repeats,
                    target_repeats=target_repeats, seconds=seconds))
            log("profiling scans (py-spy) and counting SQL statements")
            attempt(results, "profile", lambda: hotspots.run(world, pg_feed, pg_pid, seconds=3 if args.quick else 10))
        if "app" in only:
            log("the traveller app's validations beside the kiosk's scan")
            attempt(results, "app", lambda: traveller_load.run(
                world, pg_feed, pg_pid, instance, clients_list=args.clients, repeats=repeats, seconds=seconds,
                quick=args.quick))
            if results.get("app", {}).get("failures"):  # one backend failed, the other's figures kept
                results.setdefault("failures", {})["app"] = "; ".join(
                    f"{backend}: {why}" for backend, why in results["app"].pop("failures").items())
        if only & {"verdict", "bulk"}:
            with harness.gunicorn("api:create_app()", world.env, "api-kiosk") as api:
                if "verdict" in only:
                    log("scan to verdict")
                    attempt(results, "scan_to_verdict", lambda: scan_to_verdict.run(
                        api.base, world, runs=repeats, per_run=20 if args.quick else 100))
                if "bulk" in only:
                    log("bulk")
                    attempt(results, "bulk", lambda: bulk.run(api.base, world, batches=2 if args.quick else 5))


def run_all(args, only: set, seconds: int, repeats: int, target_repeats: int, instance: Path,
            results: dict) -> None:
    if only & {"api", "app", "verdict", "bulk"}:
        run_server_benchmarks(args, only, seconds, repeats, target_repeats, instance, results)

    if "growth" in only:
        def grow():
            # Two clusters, one per size, measured alternately (bench/growth.py).
            with postgres() as (small_url, _), postgres() as (large_url, _):
                return growth.run(fixture.build_world(small_url, instance / "growth-10k"),
                                  fixture.build_world(large_url, instance / "growth-1M"),
                                  **(dict(per_run=150, repeats=2, large=100_000) if args.quick else {}))

        attempt(results, "growth", grow)

    if "qr" in only:
        log("QR decoding")
        attempt(results, "qr", lambda: qr_decode.run(passes=2 if args.quick else 5))

    if "mrz" in only:
        log("passport zones from camera frames")
        attempt(results, "mrz", lambda: mrz_read.run(frames=3 if args.quick else mrz_read.FRAMES))


if __name__ == "__main__":
    main()
