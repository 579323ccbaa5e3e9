"""The results as markdown (bench/results/latest.md): targets first, then
each benchmark's table, the profile, the machine and versions."""
from __future__ import annotations

import re

from harness import fmt

# (label, how to read the figure from the results, comparison, threshold)
TARGETS = [
    ("scans/bare throughput at 32 clients, PostgreSQL", ("api_ratio", "postgresql", 32), ">=", 0.40),
    ("scan p99 at 32 clients, PostgreSQL (ms)", ("api_p99", "postgresql", 32), "<", 50),
    ("scan p99 at 32 clients, SQLite (ms)", ("api_p99", "sqlite", 32), "<", 50),
    ("growth 1M/10k: scan p50", ("growth", "scan", "ratio_p50_ms"), "<=", 1.3),
    ("growth 1M/10k: scan p99", ("growth", "scan", "ratio_p99_ms"), "<=", 1.3),
    ("growth 1M/10k: officer queue p50", ("growth", "queue", "ratio_p50_ms"), "<=", 1.3),
    ("growth 1M/10k: officer queue p99", ("growth", "queue", "ratio_p99_ms"), "<=", 1.3),
    ("QR pipeline/plain median cost", ("qr_ratio",), "<=", 1.5),
    ("QR pipeline: codes read of 30", ("qr_read",), ">=", 30),
    ("QR pipeline: false positives", ("qr_false",), "<=", 0),
    ("scan to verdict p99 (ms)", ("verdict_p99",), "<", 300),
]


def _figure(results: dict, path: tuple):
    try:
        kind = path[0]
        if kind == "api_ratio":
            return results["api"][path[1]]["scan_fresh"][path[2]]["ratio_to_bare"]["median"]
        if kind == "api_p99":
            return results["api"][path[1]]["scan_fresh"][path[2]]["p99_ms"]["median"]
        if kind == "growth":
            return results["growth"][path[1]][path[2]]["median"]
        if kind == "qr_ratio":
            return results["qr"]["ratio_median"]["median"]
        if kind == "qr_read":
            return results["qr"]["pipeline"]["read"]
        if kind == "qr_false":
            return results["qr"]["pipeline"]["false_positives"]
        if kind == "verdict_p99":
            return results["scan_to_verdict"]["p99_ms"]["median"]
    except (KeyError, TypeError):
        return None


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def targets(results: dict) -> list[dict]:
    out = []
    for label, path, op, threshold in TARGETS:
        value = _figure(results, path)
        if value is None:
            out.append({"target": label, "threshold": f"{op} {threshold}", "value": None, "met": None})
            continue
        met = {">=": value >= threshold, "<": value < threshold, "<=": value <= threshold}[op]
        if met:
            gap = ""
        elif op == ">=":
            gap = f"{_times(threshold / value)} too low" if value else "none measured"
        else:
            gap = f"{_times(value / threshold)} over" if threshold else f"{value} over"
        out.append({"target": label, "threshold": f"{op} {threshold}", "value": value, "met": met, "missed_by": gap})
    return out


def _short_sql(sql: str) -> str:
    """One line per statement: the tables and conditions, not the columns."""
    sql = " ".join(sql.split())
    sql = re.sub(r"%\(\w+\)s(::(TIMESTAMP WITH TIME ZONE|[A-Z]+))?", "?", sql)
    sql = re.sub(r"IN \(\?(, \?)+\)", "IN (?, ...)", sql)
    select = re.match(r"SELECT (.*?) FROM (.*?)(?: WHERE (.*?))?(?: ORDER BY .*| LIMIT .*)?$", sql)
    if select:
        what = "count(*)" if "count(" in select.group(1) else "..."
        where = f" WHERE {select.group(3)}" if select.group(3) else ""
        return f"SELECT {what} FROM {select.group(2)}{where}"[:150]
    update = re.match(r"UPDATE (\w+) SET .*? WHERE (.*)$", sql)
    if update:
        return f"UPDATE {update.group(1)} SET ... WHERE {update.group(2)}"[:150]
    return re.sub(r"\(.*", "(...)", sql)[:150] if sql.startswith("INSERT") else sql[:150]


def _num(value, digits=2) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def without_raw(results: dict) -> dict:
    """The results without each wrk run's raw figures and with SQL shortened
    (the full figures stay in work/latest-raw.json)."""
    out = dict(results)
    if "api" in out:
        out["api"] = {b: {k: v for k, v in r.items() if k != "raw"} for b, r in out["api"].items()}
    if "statements" in out.get("profile", {}):
        out["profile"] = dict(out["profile"], statements={
            label: dict(st, sql=[_short_sql(q) for q in st["sql"]])
            for label, st in out["profile"]["statements"].items()})
    out["targets"] = targets(results)
    return out


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"`make bench` on {m['date']}, commit {m['git_commit']}; {m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gib']} GiB; load average {m['load_average_start'][0]} at the start, "
        f"{m.get('load_average_end', ['?'])[0]} at the end (other work on the machine); "
        f"wall time {results.get('wall_seconds', 0):.0f} s"
        + (" (**--quick run: smoke test, not figures to keep**)" if results.get("quick") else "") + ".",
        f"Each figure: median (min-max) of {results['repeats']} runs of {results['cell_seconds']} s; "
        "ratios are per run, between figures measured side by side.",
        "",
        "## Targets",
        "",
        "| target | wanted | measured | met |",
        "|---|---|---|---|",
    ]
    for t in targets(results):
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else f"**no** ({t['missed_by']})")
        lines.append(f"| {t['target']} | {t['threshold']} | {_num(t['value'])} | {met} |")

    try:
        cells = results["api"]["postgresql"]
        bare = cells["bare"][32]["cpu_ms_per_request"]["api"]["median"]
        scan = sum(x["median"] for k, x in cells["scan_fresh"][32]["cpu_ms_per_request"].items() if k != "wrk")
        lines += ["", f"CPU per request at 32 clients on PostgreSQL (wrk's own left out): bare endpoint "
                  f"{bare:.2f} ms, fresh scan {scan:.2f} ms (API workers + PostgreSQL). While both are "
                  f"CPU-bound on the same 2 cores, scans/bare cannot exceed about {bare / scan:.2f}."]
    except (KeyError, TypeError, ZeroDivisionError):
        pass

    if "api" in results:
        g = results["gunicorn"]
        lines += ["", "## 1. API throughput and latency (gunicorn, wrk on 127.0.0.1)", "",
                  f"gunicorn.conf.py: {g.get('workers')} workers x {g.get('threads')} threads "
                  f"({g.get('worker_class')}). wrk (1 thread) runs on the same 2 cores. "
                  "CPU ms/request: the API's workers + the database server + wrk.", ""]
        for backend, data in results["api"].items():
            lines += [f"### {backend}", "",
                      "| endpoint | clients | requests/s | p50 ms | p99 ms | errors | vs bare | CPU ms/req |",
                      "|---|---|---|---|---|---|---|---|"]
            from api_load import ENDPOINTS, LABELS

            for endpoint in ENDPOINTS:
                for clients, cell in data[endpoint].items():
                    ratio = fmt(cell.get("ratio_to_bare"), 3) if "ratio_to_bare" in cell else ""
                    cpu = " + ".join(f"{fmt(v, 2).split(' ')[0]}" for v in cell["cpu_ms_per_request"].values())
                    flags = []
                    if cell.get("refused"):
                        flags.append(f"{cell['refused']} refused")
                    if cell.get("wrapped"):
                        flags.append(f"{cell['wrapped']} payloads reused")
                    errors = str(cell["errors"]) + (f" ({', '.join(flags)})" if flags else "")
                    lines.append(f"| {LABELS[endpoint]} | {clients} | {fmt(cell['rps'], 0)} | "
                                 f"{fmt(cell['p50_ms'])} | {fmt(cell['p99_ms'])} | {errors} | {ratio} | {cpu} |")
            lines.append("")

    if "growth" in results:
        gr = results["growth"]
        lines += ["## 2. Growth: 10 thousand vs 1 million forms (PostgreSQL)", "",
                  f"{gr['clients']} client(s), {gr['seconds']} s a run; the 990k more forms (with their "
                  f"lines and checks) loaded with COPY in {gr['load_990k_s']:.0f} s.", "",
                  "| request | p50 10k | p50 1M | ratio p50 | p99 10k | p99 1M | ratio p99 |",
                  "|---|---|---|---|---|---|---|"]
        for what, label in (("scan", "POST /scans (fresh)"), ("queue", "GET /checks?exit_point=AMS")):
            d = gr[what]
            lines.append(f"| {label} | {fmt(d['10k']['p50_ms'])} | {fmt(d['1M']['p50_ms'])} | "
                         f"{fmt(d['ratio_p50_ms'], 2)} | {fmt(d['10k']['p99_ms'])} | {fmt(d['1M']['p99_ms'])} | "
                         f"{fmt(d['ratio_p99_ms'], 2)} |")
        if gr.get("queue_explain_1M"):
            lines += ["", "Queue query plan at 1M forms:", "", "```"] + gr["queue_explain_1M"][:14] + ["```"]
        lines.append("")

    if "qr" in results:
        q = results["qr"]
        lines += ["## 3. QR decoding (40 camera-like frames, ../shared/frames)", "",
                  f"Pipeline: {q['pipeline_kind']}, then shared.qrtoken.verify_form_token. "
                  f"Signature check outcomes per pass: {q['signature_check_outcomes_per_pass']} "
                  f"(fixture payloads); a full Ed25519 check of a genuine token costs "
                  f"{q['full_ed25519_verify_us']:.0f} us.", "",
                  "| | codes read | false positives | median ms/frame | p99 ms/frame |", "|---|---|---|---|---|"]
        for name in ("plain", "pipeline"):
            d = q[name]
            lines.append(f"| {name} | {d['read']}/{d['codes']} | {d['false_positives']} | "
                         f"{fmt(d['median_ms'], 2)} | {fmt(d['p99_ms'], 2)} |")
        lines += ["", f"Ratio pipeline/plain (median): {fmt(q['ratio_median'], 2)}", ""]

    if "scan_to_verdict" in results:
        v = results["scan_to_verdict"]
        parts = ", ".join(f"{k} {x:.1f}" for k, x in v["parts_median_ms"].items())
        lines += ["## 4. Scan to verdict (kiosk path, loopback, PostgreSQL)", "",
                  f"Median {fmt(v['median_ms'])} ms, p99 {fmt(v['p99_ms'])} ms over {v['runs']} runs of "
                  f"{v['per_run']} travellers; median parts (ms): {parts}. Decoder: {v['decoder']}; "
                  f"client: {v['client']}. Verdicts: {v['verdicts']}. The kiosk's screen update is not "
                  "included.", ""]

    if "bulk" in results:
        b = results["bulk"]
        lines += ["## 5. Bulk issuing", ""]
        if b.get("available"):
            lines.append(f"POST /api/v1/forms/batch, {b['batch_size']} forms a batch: "
                         f"{fmt(b['forms_per_s'], 0)} forms/s (statuses {b['statuses']}). {b.get('note', '')}")
        else:
            lines.append(b["note"])
        lines.append("")

    p = results.get("profile")
    if p:
        lines += ["## Where the time goes", "",
                  f"py-spy (--gil: Python CPU only) on every gunicorn worker during fresh scans at "
                  f"{p['clients']} clients on PostgreSQL ({p['load']['rps']:.0f} requests/s; CPU ms/request "
                  + ", ".join(f"{k} {x:.2f}" for k, x in p["load"]["cpu_ms_per_request"].items()) + ").", ""]
        if "py_spy" in p:
            s = p["py_spy"]
            lines.append(f"Python CPU by layer ({s['samples']} samples): "
                         + "; ".join(f"{k} {v}%" for k, v in s["layers"]) + ".")
            lines += ["", "Application functions (inclusive): "
                      + "; ".join(f"`{k}` {v}%" for k, v in s["app_functions"][:8]) + ".",
                      "", "Leaf functions (self): " + "; ".join(f"`{k}` {v}%" for k, v in s["self"][:6]) + "."]
        else:
            lines += [f"py-spy failed ({p.get('py_spy_error')}); pyinstrument in-process:", "", "```"]
            lines += p.get("pyinstrument_top", [])[:25] + ["```"]
        lines += ["", "SQL statements per request (in-process, one request each after a warm-up):", ""]
        for label, st in p.get("statements", {}).items():
            lines.append(f"- {label}: {st['count']} statements, {st['ms']} ms")
        scan = p.get("statements", {}).get("POST /scans (fresh form)")
        if scan:
            lines += ["", "A fresh scan's statements, in order:", "", "```"]
            lines += [_short_sql(s) for s in scan["sql"]]
            lines.append("```")
        lines.append("")

    if results.get("failures"):
        lines += ["## Failures", ""] + [f"- {k}: {v}" for k, v in results["failures"].items()] + [""]

    v = m["versions"]
    lines += ["## Machine and versions", "",
              f"{m['os']}; Python {m['python']}; " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
              "PostgreSQL is the throwaway cluster of scripts/throwaway-postgres.sh (fsync, "
              "synchronous_commit and full_page_writes off), on the same 2 cores as the API and wrk.", ""]
    return "\n".join(lines)
