"""The soak run's figures: per bucket (a minute), per endpoint, memory
growth, latency drift and the verdicts; then the markdown of
bench/results/soak.md."""
from __future__ import annotations

from collections import defaultdict

from harness import percentile

# The first two buckets (minutes) are warm-up, left out of the comparisons:
# PostgreSQL's backends grow while psycopg prepares each statement the mix
# sends (on its fifth run, up to 100 a connection) and the backends plan
# them. In the first full runs their private memory rose 3 to 4 % from the
# first minute to the second, and about 1 % a minute after that.
WARMUP_BUCKETS = 2

# Process kinds whose memory growth is judged: (key, label, figure of a sample).
MEMORY_KINDS = [
    ("workers", "gunicorn workers (sum of RSS)",
     lambda s: sum(w["rss_mib"] for w in s["workers"].values())),
    ("master", "gunicorn master (RSS)", lambda s: s["master_rss_mib"]),
    ("webhook_worker", "webhook worker (RSS)", lambda s: s["webhook_worker_rss_mib"]),
    ("pg_backends", "PostgreSQL backends (sum of private memory)",
     lambda s: s.get("pg_backends_private_mib")),
]
# Judged on the backends open in both compared buckets: one more connection
# the pool opened under a burst adds a backend's memory without anything
# growing (the connections have a verdict of their own).
PG_SAME_BACKENDS = "PostgreSQL backends open throughout (sum of private memory)"


def _latency(outcomes: list[dict]) -> dict:
    """Requests, errors and latency percentiles; latency over the requests
    that got an answer (a timeout's 30 s is an error, not a latency)."""
    answered = [o["latency_ms"] for o in outcomes if o["status"] is not None]
    return {
        "requests": len(outcomes),
        "errors": sum(1 for o in outcomes if o["error"]),
        "p50_ms": round(percentile(answered, 50), 1) if answered else None,
        "p99_ms": round(percentile(answered, 99), 1) if answered else None,
    }


def _samples_in(samples: list[dict], start: float, end: float) -> list[dict]:
    inside = [s for s in samples if start <= s["t_s"] < end]
    if inside or not samples:
        return inside
    middle = (start + end) / 2  # sampling slower than buckets: the nearest sample
    return [min(samples, key=lambda s: abs(s["t_s"] - middle))]


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _ratio(last, first):
    return round(last / first, 2) if last is not None and first else None


def summarise(results: dict) -> None:
    """Adds buckets, endpoints, memory, latency_drift, verdicts and passed
    to ``results`` (from its raw outcomes and samples)."""
    outcomes = results["raw"]["outcomes"]
    samples = results["samples"]
    width = results["bucket_seconds"]
    count = results["seconds"] // width
    by_bucket: list[list[dict]] = [[] for _ in range(count)]
    by_endpoint: dict[str, list[list[dict]]] = defaultdict(lambda: [[] for _ in range(count)])
    for o in outcomes:
        index = int(o["at"] // width)
        if index < count:
            by_bucket[index].append(o)
            by_endpoint[o["endpoint"]][index].append(o)

    buckets = []
    for index, bucket in enumerate(by_bucket):
        inside = _samples_in(samples, index * width, (index + 1) * width)
        cpu = _cpu_per_request(samples, outcomes, index * width, (index + 1) * width)
        row = {"index": index, "start_s": index * width, "warm_up": index < WARMUP_BUCKETS, **_latency(bucket),
               "memory_mib": {key: _mean(figure(s) for s in inside) for key, _, figure in MEMORY_KINDS},
               "pg_backends_rss_mib": _mean(s.get("pg_backends_rss_mib") for s in inside),
               "workers": max((len(s["workers"]) for s in inside), default=None),
               "db_connections": max((s["db_connections"] for s in inside), default=None),
               "worker_open_files_max": max((max((w["open_files"] for w in s["workers"].values()), default=0)
                                             for s in inside), default=None),
               "load_average": _mean(s.get("load_average") for s in inside),
               "cpu_ms_per_request": cpu}
        buckets.append(row)
    results["buckets"] = buckets

    first, last = buckets[WARMUP_BUCKETS], buckets[-1]
    endpoints = {}
    for endpoint, parts in sorted(by_endpoint.items()):
        whole = _latency([o for part in parts for o in part])
        a, b = _latency(parts[WARMUP_BUCKETS]), _latency(parts[-1])
        endpoints[endpoint] = {**whole, "first": a, "last": b, "p50_drift": _ratio(b["p50_ms"], a["p50_ms"]),
                               "p99_drift": _ratio(b["p99_ms"], a["p99_ms"]),
                               "per_bucket": [_latency(part) for part in parts]}
    results["endpoints"] = endpoints
    results["totals"] = _latency(outcomes)
    results["latency_drift"] = {"first_bucket": first["index"], "last_bucket": last["index"],
                                "p50_first_ms": first["p50_ms"], "p50_last_ms": last["p50_ms"],
                                "p99_first_ms": first["p99_ms"], "p99_last_ms": last["p99_ms"],
                                "p50": _ratio(last["p50_ms"], first["p50_ms"]),
                                "p99": _ratio(last["p99_ms"], first["p99_ms"])}
    # The second half's share of the growth: memory that fills caches
    # levels off, a leak keeps its pace.
    middle = buckets[(WARMUP_BUCKETS + len(buckets) - 1 + 1) // 2]
    memory = {}
    for key, label, _ in MEMORY_KINDS:
        a, m, b = first["memory_mib"][key], middle["memory_mib"][key], last["memory_mib"][key]
        if a is None or b is None:
            continue
        memory[key] = {"label": label, "first_mib": round(a, 1), "last_mib": round(b, 1),
                       "growth_mib": round(b - a, 1), "growth_pct": round((b - a) / a * 100, 1) if a else None,
                       "second_half_mib": round(b - m, 1) if m is not None else None}
    same = _same_backends(samples, first, last, width)
    if same:
        a, b, n = same
        half = _same_backends(samples, middle, last, width)
        memory["pg_backends"] = {"label": f"{PG_SAME_BACKENDS}, {n} backends", "first_mib": round(a, 1),
                                 "last_mib": round(b, 1), "growth_mib": round(b - a, 1),
                                 "growth_pct": round((b - a) / a * 100, 1) if a else None,
                                 "second_half_mib": round(half[1] - half[0], 1) if half else None}
    results["memory_halfway_bucket"] = middle["index"]
    results["memory"] = memory
    results["memory_per_worker"] = _per_worker(samples, first, last, width)
    results["db_connections_max"] = max((s["db_connections"] for s in samples), default=None)
    results["verdicts"] = verdicts(results)
    results["passed"] = all(v["ok"] for v in results["verdicts"])


def _cpu_per_request(samples: list[dict], outcomes: list[dict], start: float, end: float) -> dict:
    """CPU milliseconds per request of each process tree between the samples
    nearest to ``start`` and ``end``."""
    if len(samples) < 2 or "cpu_s" not in samples[0]:
        return {}
    a = min(samples, key=lambda s: abs(s["t_s"] - start))
    b = min(samples, key=lambda s: abs(s["t_s"] - end))
    requests = sum(1 for o in outcomes if a["t_s"] <= o["at"] < b["t_s"])
    if b["t_s"] <= a["t_s"] or not requests:
        return {}
    return {name: round((b["cpu_s"][name] - a["cpu_s"][name]) * 1000 / requests, 2) for name in a["cpu_s"]}


def _same_backends(samples: list[dict], first: dict, last: dict, width: int):
    """(first MiB, last MiB, count) of the private memory of the PostgreSQL
    backends present in every sample of both buckets; None without them."""
    compared = [_samples_in(samples, bucket["start_s"], bucket["start_s"] + width) for bucket in (first, last)]
    if not all(compared) or "pg_backends" not in compared[0][0]:
        return None
    pids = set.intersection(*(set(s["pg_backends"]) for part in compared for s in part))
    if not pids:
        return None
    a, b = (_mean(sum(s["pg_backends"][pid]["private_mib"] for pid in pids) for s in part) for part in compared)
    return a, b, len(pids)


def _per_worker(samples: list[dict], first: dict, last: dict, width: int) -> dict:
    """Each gunicorn worker's RSS in the two compared buckets (the sum can
    hide one worker growing while another shrinks)."""
    out = {}
    for label, bucket in (("first_mib", first), ("last_mib", last)):
        inside = _samples_in(samples, bucket["start_s"], bucket["start_s"] + width)
        for s in inside:
            for pid, w in s["workers"].items():
                out.setdefault(str(pid), {}).setdefault(label, []).append(w["rss_mib"])
    return {pid: {k: round(sum(v) / len(v), 1) for k, v in figures.items()} for pid, figures in out.items()}


def verdicts(results: dict) -> list[dict]:
    t = results["thresholds"]
    c = results["consistency"]
    hooks = c["webhooks"]
    delivered = hooks["deliveries_by_status"].get("delivered", 0)
    out = []

    def verdict(check: str, wanted: str, value, ok: bool):
        out.append({"check": check, "wanted": wanted, "value": value, "ok": bool(ok)})

    verdict("errors (5xx, connection errors, timeouts, unexpected statuses, wrong answers)",
            f"<= {t['errors']}", results["totals"]["errors"], results["totals"]["errors"] <= t["errors"])
    for key, m in results["memory"].items():
        verdict(f"memory growth: {m['label']}", f"< {t['rss_growth_pct']:g} %", f"{m['growth_pct']:+.1f} %",
                m["growth_pct"] is not None and m["growth_pct"] < t["rss_growth_pct"])
    drift = results["latency_drift"]["p99"]
    verdict("p99 drift, all requests (last bucket / first after warm-up)", f"< {t['p99_drift']:g}x",
            f"{drift}x" if drift is not None else None, drift is not None and drift < t["p99_drift"])
    verdict("forms answered 201 that are missing", "0", c["forms_missing"], c["forms_missing"] == 0)
    verdict("scans answered that are missing from the audit trail", "0", c["scans_missing_from_events"],
            c["scans_missing_from_events"] == 0)
    verdict("webhook deliveries pending after the drain", "0", hooks["pending_after_drain"],
            hooks["pending_after_drain"] == 0)
    verdict("webhook deliveries created / status-change events", "equal",
            f"{hooks['deliveries_created']} / {hooks['status_change_events_created']}",
            hooks["deliveries_created"] == hooks["status_change_events_created"])
    verdict("webhook deliveries delivered / created", "equal", f"{delivered} / {hooks['deliveries_created']}",
            delivered == hooks["deliveries_created"])
    verdict("webhooks received (distinct webhook-id) / delivered", "equal",
            f"{hooks['received_unique']} / {delivered}", hooks["received_unique"] == delivered)
    verdict("webhooks with a bad signature", "0", hooks["bad_signatures"], hooks["bad_signatures"] == 0)
    verdict("webhook worker still running when stopped", "yes",
            "yes" if hooks["worker_exited_during_run"] is None else f"exited ({hooks['worker_exited_during_run']})",
            hooks["worker_exited_during_run"] is None)
    workers = results["gunicorn"].get("workers")
    # Each worker thread holds at most one connection at a time, and the
    # webhook worker one: more would be connections leaking from the pool.
    bound = workers * results["gunicorn"].get("threads", 1) + 1
    verdict("database connections, most seen (workers x threads + the webhook worker's)", f"<= {bound}",
            results["db_connections_max"], results["db_connections_max"] is not None
            and results["db_connections_max"] <= bound)
    verdict("gunicorn workers started (a restart starts one more)", f"{workers}", results["workers_started"],
            results["workers_started"] == workers)
    g = results["gunicorn_log"]
    verdict("tracebacks and errors in gunicorn's log", "0", g["tracebacks"] + g["error_lines"],
            g["tracebacks"] + g["error_lines"] == 0)
    audit = c["verify_audit"]
    if audit["available"]:
        verdict("flask verify-audit", "exit 0", audit["exit_code"], audit["exit_code"] == 0)
    return out


# --- markdown ----------------------------------------------------------------------------------

def _n(value, digits=1, unit=""):
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def markdown(results: dict) -> str:
    m = results["machine"]
    width = results["bucket_seconds"]
    bucket_word = "minute" if width == 60 else f"{width}-s bucket"
    c = results["consistency"]
    hooks = c["webhooks"]
    drift = results["latency_drift"]
    g = results["gunicorn"]
    lines = [
        "# Soak run", "",
        f"`make soak` on {m['date']}, commit {m['git_commit']}: {results['seconds']} s of mixed load on "
        f"{results['database']}; {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; load average "
        f"{m['load_average_start'][0]} at the start, {m['load_average_end'][0]} at the end (other work shares "
        f"the machine); wall time {results['wall_seconds']} s. "
        + ("**Every threshold met.**" if results["passed"] else "**Thresholds missed** (below)."), "",
        f"gunicorn.conf.py: {g.get('workers')} workers x {g.get('threads')} threads ({g.get('worker_class')}), on "
        f"127.0.0.1; the load generator (one asyncio process, open loop: each request starts at its scheduled "
        f"moment and its latency runs from then) shares the cores. Database: "
        + ("a throwaway PostgreSQL cluster (scripts/throwaway-postgres.sh, durability off)"
           if results["database"] == "postgresql" else "SQLite (WAL)")
        + f", with {results['fixture']['forms']} forms of history and {results['fixture']['pending_checks']} "
        "travellers waiting at the AMS desk before the load starts.", "",
        "## Verdicts", "",
        "| check | wanted | measured | met |", "|---|---|---|---|",
    ]
    for v in results["verdicts"]:
        lines.append(f"| {v['check']} | {v['wanted']} | {_n(v['value'])} | {'yes' if v['ok'] else '**no**'} |")

    t = results["totals"]
    lines += ["", "## Summary", "",
              f"- Requests: {t['requests']} ({t['requests'] / results['seconds']:.1f}/s), errors: {t['errors']}; "
              f"p50 {_n(t['p50_ms'])} ms, p99 {_n(t['p99_ms'])} ms over the whole run.",
              f"- Latency drift ({bucket_word} {drift['last_bucket']} over {bucket_word} {drift['first_bucket']}, "
              f"the first after warm-up): p50 {_n(drift['p50_first_ms'])} -> {_n(drift['p50_last_ms'])} ms "
              f"({_n(drift['p50'], 2)}x), p99 {_n(drift['p99_first_ms'])} -> {_n(drift['p99_last_ms'])} ms "
              f"({_n(drift['p99'], 2)}x)."]
    for key, mem in results["memory"].items():
        half = (f"; {mem['second_half_mib']:+.1f} MiB of it since {bucket_word} {results['memory_halfway_bucket']}"
                if mem.get("second_half_mib") is not None else "")
        lines.append(f"- Memory, {mem['label']}: {mem['first_mib']} -> {mem['last_mib']} MiB "
                     f"({mem['growth_mib']:+.1f} MiB, {mem['growth_pct']:+.1f} %{half}).")
    if results["buckets"][0].get("pg_backends_rss_mib") is not None:
        first_b, last_b = (results["buckets"][drift[k]] for k in ("first_bucket", "last_bucket"))
        lines.append(f"- PostgreSQL backends' RSS, all of them, shared buffers they touched included (not "
                     f"judged): {_n(first_b['pg_backends_rss_mib'])} -> {_n(last_b['pg_backends_rss_mib'])} MiB; "
                     f"connections {first_b['db_connections']} -> {last_b['db_connections']}.")
    per_worker = [f"{w.get('first_mib', 'n/a')} -> {w.get('last_mib', 'n/a')}"
                  for w in results["memory_per_worker"].values()]
    lines.append("- Memory per gunicorn worker (RSS, MiB): " + ", ".join(per_worker) + ".")
    cpu = results.get("cpu_seconds")
    if cpu:
        lines.append("- CPU used over the load: " + ", ".join(
            f"{k} {v:.0f} s ({v / results['seconds'] * 100:.0f} % of a core)" for k, v in cpu.items()) + ".")
    delivered = hooks["deliveries_by_status"].get("delivered", 0)
    lines += [
        f"- Webhooks: {hooks['status_change_events_created']} status-change events, "
        f"{hooks['deliveries_created']} deliveries created, {delivered} delivered ({hooks['attempts']} attempts), "
        f"{hooks['received_unique']} received with a valid signature ({hooks['received_again']} received again); "
        f"{hooks['pending_when_load_stopped']} pending when the load stopped, {hooks['pending_after_drain']} after "
        f"{hooks['drain_seconds']} s of drain.",
        f"- Stored: {c['forms_issued']} forms answered 201, {c['forms_missing']} missing; "
        f"{c['scans_acknowledged']} scans answered, {c['scans_missing_from_events']} missing from the audit trail"
        + (f" ({c['scan_events_without_answer']} recorded whose answer never came)"
           if c["scan_events_without_answer"] else "") + ".",
    ]
    audit = c["verify_audit"]
    if audit["available"]:
        lines.append(f"- `flask verify-audit`: exit {audit['exit_code']}: {' / '.join(audit['output'][-3:])}")
    else:
        lines.append("- `flask verify-audit`: not in this version of the API (`flask --app api --help` does not "
                     "list it), not run.")
    lg = results["gunicorn_log"]
    lines.append(f"- gunicorn: {results['workers_started']} workers started over the run; its log has "
                 f"{lg['tracebacks']} tracebacks, {lg['error_lines']} error lines, {lg['worker_timeouts']} worker "
                 "timeouts.")

    pg = results["database"] == "postgresql"
    lines += ["", f"## Per {bucket_word}", "",
              "Memory: the mean of the samples (every "
              f"{results['sample_seconds']:g} s) in the bucket. "
              + ("PostgreSQL backends: private memory (RSS in brackets: it also counts the shared buffers each "
                 "backend has touched). " if pg else "")
              + "Connections: the most seen in a sample"
              + ("" if pg else " (SQLite: open handles on the database file)") + ". CPU ms/request: the API's "
              "workers" + (" + PostgreSQL" if pg else "") + ", from /proc between the samples at the bucket's ends. "
              "Load average: the machine's 1-minute load average (other work shares the 2 cores).", "",
              "| | from s | requests | errors | p50 ms | p99 ms | CPU ms/request | workers MiB | master MiB | "
              "webhook worker MiB |" + (" PG backends MiB |" if pg else "")
              + " DB connections | open files (worker max) | load average |",
              "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if pg else "") + "---|---|---|"]
    for b in results["buckets"]:
        mem = b["memory_mib"]
        row = (f"| {b['index']}{' (warm-up)' if b['warm_up'] else ''} | {b['start_s']} | {b['requests']} | "
               f"{b['errors']} | {_n(b['p50_ms'])} | {_n(b['p99_ms'])} | "
               f"{' + '.join(_n(v, 2) for k, v in b['cpu_ms_per_request'].items() if k != 'webhook worker') or 'n/a'}"
               f" | {_n(mem['workers'])} | "
               f"{_n(mem['master'])} | {_n(mem['webhook_worker'])} |")
        if pg:
            row += f" {_n(mem['pg_backends'])} ({_n(b['pg_backends_rss_mib'], 0)}) |"
        row += f" {_n(b['db_connections'])} | {_n(b['worker_open_files_max'])} | {_n(b['load_average'], 2)} |"
        lines.append(row)

    lines += ["", "## Per endpoint", "",
              f"p50 / p99 in ms over the whole run, then in the first {bucket_word} after warm-up and the last.", "",
              "| endpoint | requests | errors | p50 | p99 | first p50 / p99 | last p50 / p99 | p99 drift |",
              "|---|---|---|---|---|---|---|---|"]
    for endpoint, e in results["endpoints"].items():
        lines.append(f"| {endpoint} | {e['requests']} | {e['errors']} | {_n(e['p50_ms'])} | {_n(e['p99_ms'])} | "
                     f"{_n(e['first']['p50_ms'])} / {_n(e['first']['p99_ms'])} | "
                     f"{_n(e['last']['p50_ms'])} / {_n(e['last']['p99_ms'])} | {_n(e['p99_drift'], 2, 'x')} |")

    lines += ["", f"p50 / p99 in ms per {bucket_word}:", "",
              "| endpoint | " + " | ".join(str(b["index"]) for b in results["buckets"]) + " |",
              "|---|" + "---|" * len(results["buckets"])]
    for endpoint, e in results["endpoints"].items():
        if not endpoint.startswith("refused:"):
            lines.append(f"| {endpoint} | " + " | ".join(f"{_n(p['p50_ms'], 0)} / {_n(p['p99_ms'], 0)}"
                                                        for p in e["per_bucket"]) + " |")

    lines += ["", "## Errors", ""]
    if results["error_samples"]:
        lines.append("The first answers of each kind (travellers' details blanked):")
        lines.append("")
        for kind, kept in results["error_samples"].items():
            for s in kept:
                lines.append(f"- {kind}, at {s['at_s']} s, status {s['status']}: `{s['detail']}`")
    else:
        lines.append("None.")
    lines += ["", "Refusals that were expected (not errors): "
              + (", ".join(f"{k}: {v}" for k, v in sorted(results["expected_4xx"].items())) or "none") + "."]

    a = results["activity"]
    lines += ["", "## What the load did", "",
              "Rates per second: " + ", ".join(f"{k} {v:g}" for k, v in results["rates_per_s"].items())
              + " (`bench/soak_load.py`).", "",
              f"- Forms issued: {a['forms_issued']} ({a['forms_via_batch']} through /forms/batch); cancelled "
              f"{a['forms_cancelled']}; left unscanned at the end {a['travellers_not_scanned_at_end']}.",
              "- Scan verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(a["scan_verdicts"].items())) + ".",
              "- Officers' decisions: " + (", ".join(f"{k} {v}" for k, v in sorted(a["decisions"].items()))
                                           or "none") + ".",
              f"- Change feed: {a['feed_changes_read']} changes read; refunds paid {a['refunds_paid']}.",
              "- Status lookups: " + (", ".join(f"{k} {v}" for k, v in sorted(a["status_lookups"].items()))
                                      or "none") + ".",
              "- Webhooks received by type: " + (", ".join(f"{k} {v}" for k, v in
                                                         sorted(hooks["received_by_type"].items())) or "none") + ".",
              "- Connections opened: " + ", ".join(f"{k} {v}" for k, v in a["connections_opened"].items()) + ".",
              "- Ticks with nothing to do: " + (", ".join(f"{k} {v}" for k, v in sorted(a["idle_ticks"].items()))
                                                or "none") + "."]

    v = m["versions"]
    lines += ["", "## Machine and versions", "",
              f"{m['os']}; Python {m['python']}; " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".", ""]
    return "\n".join(lines)
