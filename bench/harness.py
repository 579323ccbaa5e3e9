"""The small shared harness of the benchmark suite: paths, statistics over
repeated runs, a gunicorn server on loopback, the wrk load generator, and the
machine/version facts that go into the results file.

Every figure is the median of repeated runs with its min and max; every
comparison is a ratio of two figures measured in the same run (per repeat,
then the median of the ratios), because the machines are shared and noisy.
"""
from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WORK = RESULTS / "work"  # logs, payload files, raw profiles (not committed)
VENV_BIN = Path(sys.executable).parent
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
WRK_SCRIPTS = BENCH / "wrk"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- statistics ---------------------------------------------------------------

def spread(values) -> dict:
    """Median, min, max (and n) of repeated measurements; None values skipped."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def ratios(numerators, denominators) -> dict:
    """Per-repeat ratios of figures measured side by side, then their spread."""
    return spread(n / d for n, d in zip(numerators, denominators, strict=True) if n is not None and d)


def percentile(values, q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(s: dict | None, digits: int = 1, unit: str = "") -> str:
    """'median (min-max)' for a spread."""
    if not s or s.get("median") is None:
        return "n/a"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}-{f.format(s['max'])})"


# --- processes ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.2)


@dataclass
class Server:
    base: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def gunicorn(app: str, env: dict, name: str, ready_path: str = "/readyz", pythonpath: Path | None = None,
             tree: Path = ROOT):
    """``app`` served by gunicorn with the repository's gunicorn.conf.py
    (production settings) on a free loopback port; stopped on exit. With
    ``tree``, another checkout's code under its own gunicorn.conf.py."""
    port = free_port()
    WORK.mkdir(parents=True, exist_ok=True)
    logfile = open(WORK / f"gunicorn-{name}.log", "w")
    cmd = [str(VENV_BIN / "gunicorn"), "--config", str(tree / GUNICORN_CONF.name), "--bind", f"127.0.0.1:{port}"]
    if pythonpath:
        cmd += ["--pythonpath", str(pythonpath)]
    env = {**os.environ, **env}
    if tree != ROOT:  # its own api package, whatever the venv's editable install points at
        cmd += ["--chdir", str(tree)]
        env["PYTHONPATH"] = str(tree)
    process = subprocess.Popen(cmd + [app], cwd=tree, env=env, stdout=logfile, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + ready_path)
        yield Server(base, process)
    finally:
        stop(process, signal.SIGTERM, wait=20)
        logfile.close()


def stop(process: subprocess.Popen, how: int, wait: float) -> None:
    """Ask ``process`` to stop with the signal ``how``; kill it if it has
    not stopped after ``wait`` seconds."""
    process.send_signal(how)
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


# --- CPU time ---------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far) for every process."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree (root pid and
    every descendant)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in roots.items():
        total, stack = 0.0, [root]
        while stack:
            pid = stack.pop()
            total += table.get(pid, (0, 0.0))[1]
            stack.extend(children.get(pid, []))
        out[name] = total
    return out


def postmaster_pid(pg_dir: Path) -> int:
    return int((pg_dir / "data" / "postmaster.pid").read_text().split()[0])


# --- wrk ----------------------------------------------------------------------

WRK_LINE = re.compile(r"^BENCH (\{.*\})$", re.M)
# What report.lua prints for every script; the rest are the script's counters.
WRK_FIELDS = ("requests", "duration_us", "p50_us", "p99_us", "max_us", "connect", "read", "write", "status",
              "timeout")


def wrk(url: str, script: str, clients: int, seconds: float, args: list[str] = (), timeout_s: int = 10,
        cpu_of: dict[str, int] | None = None) -> dict:
    """One bounded wrk run (one wrk thread, ``clients`` connections, keep-alive).

    Returns requests/s, p50/p99/max latency (ms), error count and whatever
    counters the Lua script reports; with ``cpu_of`` ({name: root pid}) also
    the CPU milliseconds per request each process tree used. One wrk thread
    keeps the load generator's share of the 2 cores small; it is still on
    the same cores.
    """
    before = cpu_seconds(cpu_of) if cpu_of else None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
           "-s", str(WRK_SCRIPTS / script), url, "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30,
                         env={**os.environ, "BENCH_WRK_DIR": str(WRK_SCRIPTS)})
    match = WRK_LINE.search(out.stdout)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}")
    raw = json.loads(match.group(1))
    duration = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    cpu = {}
    if cpu_of and raw["requests"]:
        after = cpu_seconds(cpu_of)
        cpu = {name: (after[name] - before[name]) * 1000 / raw["requests"] for name in cpu_of}
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["wrk"] = ((used.ru_utime + used.ru_stime) - (children.ru_utime + children.ru_stime)) \
            * 1000 / raw["requests"]
    return {
        "rps": raw["requests"] / duration if duration else 0.0,
        "requests": raw["requests"],
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_detail": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]},
        "cpu_ms_per_request": cpu,
        # The script's own counters (refused, wrapped, verdicts ...).
        **{k: v for k, v in raw.items() if k not in WRK_FIELDS},
    }


def one_client(url: str, headers: dict, count: int, bodies: list[bytes] | None = None,
               refused: bytes = b'"verdict":"refused"') -> dict:
    """``count`` requests one after the other on one keep-alive connection
    (POST each of ``bodies`` in turn, or GET): every latency in ms, for
    percentiles over thousands of samples pooled across runs, which wrk's
    per-run summary cannot give. Latency runs from sending the request to
    reading the whole answer; a Python client adds a little, the same for
    every size compared."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json", **headers} if bodies else dict(headers)
    latencies, errors, refusals = [], 0, 0
    try:
        for i in range(count):
            body = bodies[i] if bodies else None
            started = time.perf_counter()
            conn.request("POST" if bodies else "GET", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status >= 400
            refusals += refused in data.replace(b" ", b"")
    finally:
        conn.close()
    return {"latencies_ms": latencies, "errors": errors, "refused": refusals}


def summarise_cells(runs: list[dict]) -> dict:
    """Repeated wrk runs of one cell: each figure as median/min/max."""
    return {
        "rps": spread(r["rps"] for r in runs),
        "p50_ms": spread(r["p50_ms"] for r in runs),
        "p99_ms": spread(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "refused": sum(r.get("refused", 0) for r in runs),
        "wrapped": sum(r.get("wrapped", 0) for r in runs),
        "cpu_ms_per_request": {name: spread(r["cpu_ms_per_request"].get(name) for r in runs)
                               for name in (runs[0]["cpu_ms_per_request"] if runs else {})},
        # The server side's CPU (API or floor workers + database), per run
        # then summarised: what the targets read.
        "cpu_ms_server": spread(sum(v for k, v in r["cpu_ms_per_request"].items() if k != "wrk")
                                if r["cpu_ms_per_request"] else None for r in runs),
    }


# --- facts for the results file ---------------------------------------------------

def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def _package(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    pg = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        # Other work on the machine (a test suite running alongside) shows here.
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "postgresql": _version([str(pg[-1]), "--version"]) if pg else "not found",
            "sqlite": __import__("sqlite3").sqlite_version,
            "wrk": _version(["wrk", "--version"]),
            **{name: _package(name) for name in (
                "flask", "flask-smorest", "marshmallow", "sqlalchemy", "psycopg", "gunicorn",
                "pyjwt", "cryptography", "zxing-cpp", "numpy", "pillow", "py-spy")},
        },
    }


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise SystemExit(f"bench: {tool} is not installed (run bench/system-packages.sh as root)")
