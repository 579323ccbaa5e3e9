"""The results as markdown (bench/results/latest.md): targets first, then
each benchmark's table, the profile, the machine and versions."""
from __future__ import annotations

import re

from harness import fmt

# The project's API targets, read on PostgreSQL, each real endpoint beside
# its floor (bench/minimal_app.py) in the same run:
# (label, how to read the figure from the results, comparison, threshold).
API_TARGETS = [
    ("fresh scan, CPU per request (API + database), 32 clients (ms)",
     ("cpu", "postgresql", "scan_fresh", 32), "<=", 2.0),
    ("fresh scan throughput / minimal scan, 32 clients", ("floor_ratio", "postgresql", "scan_fresh", 32), ">=", 0.5),
    ("re-scan CPU per request (API + database), 32 clients (ms)",
     ("cpu", "postgresql", "scan_rescan", 32), "<=", 1.0),
    ("form issue throughput / minimal issue, 32 clients", ("floor_ratio", "postgresql", "forms_post", 32), ">=", 0.5),
    ("scan p99 at 32 clients (ms)", ("api_p99", "postgresql", "scan_fresh", 32), "<", 50),
    ("growth 1M/10k forms, scan p99", ("growth", "scan", "ratio_p99_ms"), "<=", 1.3),
]
OTHER_TARGETS = [
    ("scan p99 at 32 clients, SQLite (ms)", ("api_p99", "sqlite", "scan_fresh", 32), "<", 50),
    ("growth 1M/10k: scan p50", ("growth", "scan", "ratio_p50_ms"), "<=", 1.3),
    ("growth 1M/10k: officer queue p50", ("growth", "queue", "ratio_p50_ms"), "<=", 1.3),
    ("growth 1M/10k: officer queue p99", ("growth", "queue", "ratio_p99_ms"), "<=", 1.3),
    ("QR pipeline/plain median cost", ("qr_ratio",), "<=", 1.5),
    ("QR pipeline: codes read of 30", ("qr_read",), ">=", 30),
    ("QR pipeline: false positives", ("qr_false",), "<=", 0),
    ("scan to verdict p99, kiosk app to rendered verdict (ms)", ("verdict_p99",), "<", 300),
    # The traveller app's passport reader: 90 % of the 24 pages, never a wrong zone.
    ("passport zones: pages the app reads within 10 frames, of 24", ("mrz_reported",), ">=", 22),
    ("passport zones: wrong zones accepted", ("mrz_wrong",), "<=", 0),
]
TARGETS = API_TARGETS + OTHER_TARGETS


def _median(value):
    """A figure, or the median of a spread."""
    return value.get("median") if isinstance(value, dict) else value


def _figure(results: dict, path: tuple):
    try:
        kind = path[0]
        if kind == "cpu":
            return results["api"][path[1]][path[2]][path[3]]["cpu_ms_server"]["median"]
        if kind == "floor_ratio":
            return results["api"][path[1]][path[2]][path[3]]["ratio_to_floor"]["median"]
        if kind == "api_p99":
            return results["api"][path[1]][path[2]][path[3]]["p99_ms"]["median"]
        if kind == "growth":
            return _median(results["growth"][path[1]][path[2]])
        if kind == "qr_ratio":
            return results["qr"]["ratio_median"]["median"]
        if kind == "qr_read":
            return results["qr"]["pipeline"]["read"]
        if kind == "qr_false":
            return results["qr"]["pipeline"]["false_positives"]
        if kind == "mrz_reported":
            return results["mrz"]["pages_reported"]
        if kind == "mrz_wrong":
            return results["mrz"]["wrong_accepted"] + results["mrz"]["pages_reported_wrong"]
        if kind == "verdict_p99":  # the kiosk app's path, screen included
            return results["scan_to_verdict"]["kiosk"]["p99_ms"]["median"]
    except (KeyError, TypeError):
        return None


def _floor_figure(results: dict, path: tuple) -> str:
    """The same figure for the floor (the minimal endpoint), or what the
    ratio is made of, for the targets table."""
    try:
        kind = path[0]
        if kind in ("cpu", "api_p99", "floor_ratio"):
            backend = path[1]
            from api_load import FLOOR_OF

            cells = results["api"][backend]
            real, floor = cells[path[2]][path[3]], cells[FLOOR_OF[path[2]]][path[3]]
            if kind == "cpu":
                return f"minimal: {floor['cpu_ms_server']['median']:.2f} ms"
            if kind == "api_p99":
                return f"minimal: {floor['p99_ms']['median']:.1f} ms"
            return f"{real['rps']['median']:.0f} vs {floor['rps']['median']:.0f} requests/s"
        if kind == "growth":
            g = results["growth"][path[1]]
            q = path[2].removeprefix("ratio_")
            return (f"{g['10k'][q]:.1f} ms at 10k, {g['1M'][q]:.1f} ms at {results['growth']['large_forms']:,} "
                    f"({g['10k']['n']} + {g['1M']['n']} requests)")
    except (KeyError, TypeError, ImportError):
        pass
    return ""


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def targets(results: dict, which=TARGETS) -> list[dict]:
    out = []
    for label, path, op, threshold in which:
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
        out.append({"target": label, "threshold": f"{op} {threshold}", "value": value, "met": met,
                    "missed_by": gap, "beside": _floor_figure(results, path)})
    return out


def _without_subqueries(sql: str) -> str:
    """``(SELECT ...)`` for each parenthesised subquery, so that the FROM
    found next is the statement's own."""
    out, i = [], 0
    while (start := sql.find("(SELECT ", i)) != -1:
        depth, end = 0, start
        for end in range(start, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        out.append(sql[i:start] + "(SELECT ...)")
        i = end + 1
    return "".join(out) + sql[i:]


def _short_sql(sql: str) -> str:
    """One line per statement: the tables and conditions, not the columns."""
    sql = _without_subqueries(" ".join(sql.split()))
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


SECTION_LABELS = {"api": "1. API", "app": "1. API: traveller app", "growth": "2. growth", "qr": "3. QR decoding",
                  "scan_to_verdict": "4. scan to verdict", "bulk": "5. bulk", "mrz": "6. passport zones",
                  "profile": "where the time goes"}


def _runs(results: dict) -> list[tuple[dict, list[str]]]:
    """The runs the sections come from (several when --only merged them),
    each with its sections, oldest first."""
    runs: dict = {}
    for key, run in (results.get("provenance") or {}).items():
        ident = (run["date"], run["git_commit"], run["only"])
        runs.setdefault(ident, (run, []))[1].append(key)
    order = list(SECTION_LABELS)
    return [(run, sorted(keys, key=lambda k: order.index(k) if k in order else 99))
            for _, (run, keys) in sorted(runs.items())]


def without_raw(results: dict) -> dict:
    """The results without each wrk run's raw figures and with SQL shortened
    (the full figures stay in work/latest-raw.json)."""
    out = dict(results)
    if "api" in out:
        out["api"] = {b: {k: v for k, v in r.items() if k != "raw"} for b, r in out["api"].items()}
    if "app" in out:
        out["app"] = {b: {k: v for k, v in r.items() if k != "raw"} for b, r in out["app"].items()}
    if "statements" in out.get("profile", {}):
        out["profile"] = dict(out["profile"], statements={
            label: dict(st, sql=[_short_sql(q) for q in st["sql"]])
            for label, st in out["profile"]["statements"].items()})
    out["targets"] = targets(results)
    return out


def _median_p99(parts: dict, p99: dict) -> str:
    return ", ".join(f"{k} {x:.1f} / {p99[k]:.1f}" for k, x in parts.items())


def _scan_to_verdict(v: dict) -> list[str]:
    lines = ["## 4. Scan to verdict (kiosk path, loopback, PostgreSQL)", ""]
    if "no_screen" not in v:  # results of the suite before the kiosk app's path was measured
        parts = ", ".join(f"{k} {x:.1f}" for k, x in v["parts_median_ms"].items())
        return lines + [f"Median {fmt(v['median_ms'])} ms, p99 {fmt(v['p99_ms'])} ms over {v['runs']} runs of "
                        f"{v['per_run']} travellers; median parts (ms): {parts}. Decoder: {v['decoder']}; "
                        f"client: {v['client']}. Verdicts: {v['verdicts']}. The kiosk's screen update is not "
                        "included.", ""]
    d, k = v["no_screen"], v.get("kiosk")
    lines += [f"One traveller at a time, {v['runs']} runs of {v['per_run']} fresh forms per path (after "
              f"{v['warmup']} warm-up forms each, not counted); the runs alternate which path goes first. "
              f"Frames: {v['frames']}.", "",
              "| path | median ms | p99 ms | min ms | max ms | scans |", "|---|---|---|---|---|---|"]

    def row(label, s):
        a = s["all_scans_ms"]
        return (f"| {label} | {fmt(s['median_ms'])} | {fmt(s['p99_ms'])} | {a['min']:.1f} | {a['max']:.1f} | "
                f"{a['n']} |")

    lines.append(row("decode + signature check + POST /scans (no screen)", d))
    if k:
        lines.append(row("kiosk app: frame to verdict on screen (decode + POST /scans + screen update)", k))
    lines += ["", "Median and p99: per run, then median (min-max) over the runs; min and max: over every scan "
              "of every run."]
    if k and "screen_share" in v:
        sh = v["screen_share"]
        lines += ["", f"The kiosk app's share beyond the no-screen path (per run): {fmt(sh['extra_median_ms'])} ms "
                  f"more at the median ({fmt(sh['ratio_median'], 2)}x), {fmt(sh['extra_p99_ms'])} ms more at p99 "
                  f"({fmt(sh['ratio_p99'], 2)}x)."]
    if k:
        setup = v.get("kiosk_setup", {})
        lines += ["", "Kiosk app stages, ms, median / p99 over every scan: "
                  + _median_p99(k["parts_median_ms"], k["parts_p99_ms"]) + ". Decode: from the frame handed to "
                  "the scan loop until its codes reach the app (the loop's decoders take turns: QR, QR, "
                  "boarding pass with QR); hand over: to the desk worker thread; request: ExitDesk.handle "
                  "(POST /scans); to the UI thread: Clock.schedule_once, until the next clock tick; screen: "
                  "result cards, layout, text, draw, until the window is flipped showing the card.",
                  "", f"The real kiosk_app.app.KioskApp in an SDL offscreen window ({setup.get('window', ['?'])[0]}x"
                  f"{setup.get('window', ['?', '?'])[1]}, OpenGL renderer {setup.get('renderer', '?')}, in "
                  "software on the same 2 cores as the API and PostgreSQL), in a subprocess, pumped by its own "
                  f"main loop (EventLoop.idle(): the Kivy clock at {setup.get('clock_max_fps', '?'):.0f} "
                  f"frames/s); its scan loop at {setup.get('scan_loop_max_fps', '?')} frames/s on a camera-like "
                  "frame source (a frame without a code, then the form's frame until its verdict is on screen); "
                  "sound off. Online, the kiosk does not check the QR signature itself (the API does; it does "
                  f"offline). Verdicts: {k['verdicts']}; not on screen within 10 s: {k['timeouts']}; scan screen "
                  f"not drawn before the form was held up: {k.get('scan_screen_not_drawn', '?')}."]
    else:
        lines += ["", f"Kiosk app path not measured: {v.get('kiosk_error', 'no figures')}."]
    lines += ["", "No-screen parts, ms, median / p99 over every scan: "
              + _median_p99(d["parts_median_ms"], d["parts_p99_ms"])
              + f". Decoder: {v['decoder']}; client: {v['client']}. Verdicts: {d['verdicts']}.", ""]
    return lines


def _mrz(z: dict) -> list[str]:
    frames = z["frames_per_page"]
    lines = ["## 6. Passport zones from camera frames (tests/data/passports.py)", "",
             f"{z['reader']}. {z['pages']} generated data pages, {frames} camera frames each "
             f"({z['frames']} reads, every frame read; drawing the frames is not timed).", "",
             "| figure | value |", "|---|---|",
             f"| median ms per frame (p90, p99) | {_num(z['median_ms'], 1)} ({_num(z['p90_ms'], 1)}, "
             f"{_num(z['p99_ms'], 1)}) |",
             f"| median ms per accepted frame | {_num(z['median_ms_accepted'], 1)} |",
             f"| frames accepted | {z['frames_accepted']}/{z['frames']} |",
             f"| zones accepted that are not the printed one | {z['wrong_accepted']} |",
             f"| pages read on their first frame | {z['pages_first_frame']}/{z['pages']} |",
             f"| pages the app reports (two frames agreeing) within {frames} frames | "
             f"{z['pages_reported']}/{z['pages']} (wrong: {z['pages_reported_wrong']}) |",
             f"| frames until the app reports, median (max) | {_num(z['frames_to_report_median'], 1)} "
             f"({_num(z['frames_to_report_max'])}) |", ""]
    if z["wrong_frames"]:
        lines += ["Wrong zones on: " + ", ".join(z["wrong_frames"]), ""]
    return lines


def _cpu(load: dict) -> str:
    return ", ".join(f"{k} {x:.2f}" for k, x in load["cpu_ms_per_request"].items())


def _profile(p: dict) -> list[str]:
    lines = ["## Where the time goes", ""]
    if "py_spy" not in p:
        lines += [f"py-spy failed ({p.get('py_spy_error')}); pyinstrument in-process:", "", "```"]
        return lines + p.get("pyinstrument_top", [])[:25] + ["```", ""]
    runs = [("fresh scans", p["load"], p["py_spy"])]
    if "py_spy_rescan" in p:
        runs.append(("re-scans", p["rescan_load"], p["py_spy_rescan"]))
    lines += [f"py-spy (--gil: Python CPU only, {p.get('seconds', '?')} s) on every gunicorn worker at "
              f"{p['clients']} clients on PostgreSQL: "
              + "; ".join(f"{label} {load['rps']:.0f} requests/s, CPU ms/request {_cpu(load)}"
                          for label, load, _ in runs) + ".", ""]
    if all("stages" in spy for _, _, spy in runs):
        lines += ["By stage: each sample counted for the innermost frame that names a stage (bench/hotspots.py "
                  "STAGES: the commit's own work, the audit chain, change feed and outbox inside it, count "
                  "apart from the COMMIT); ms = share x the workers' CPU ms per request (PostgreSQL's CPU is "
                  "apart, above).", "",
                  "| stage | " + " | ".join(f"{label} % | {label} ms" for label, _, _ in runs) + " |",
                  "|---|" + "---|---|" * len(runs)]
        shares = [dict(spy["stages"]) for _, _, spy in runs]
        ms = [dict(spy.get("stage_ms", [])) for _, _, spy in runs]
        order = [stage for stage, _ in runs[0][2]["stages"]]
        order += [stage for share in shares[1:] for stage in share if stage not in order]
        for stage in order:
            lines.append(f"| {stage} | " + " | ".join(
                f"{share.get(stage, 0):.1f} | {m.get(stage, 0):.2f}" for share, m in zip(shares, ms)) + " |")
        lines.append("")
    for label, _, spy in runs:
        lines += [f"{label.capitalize()}: Python CPU by layer ({spy['samples']} samples): "
                  + "; ".join(f"{k} {v}%" for k, v in spy["layers"]) + ".", "",
                  "Application functions (inclusive): "
                  + "; ".join(f"`{k}` {v}%" for k, v in spy["app_functions"][:8]) + ".", "",
                  "Leaf functions (self): " + "; ".join(f"`{k}` {v}%" for k, v in spy["self"][:6]) + ".", ""]
    lines += ["SQL statements per request (in-process, one request each after a warm-up), by stage:", ""]
    for label, st in p.get("statements", {}).items():
        by = "; ".join(f"{stage} {n} ({ms} ms)" for stage, n, ms in st.get("by_stage", []))
        lines.append(f"- {label}: {st['count']} statements, {st['ms']} ms" + (f": {by}" if by else ""))
    for label in ("POST /scans (fresh form)", "POST /scans (re-scan)"):
        scan = p.get("statements", {}).get(label)
        if scan:
            stages = scan.get("stages") or [""] * len(scan["sql"])
            lines += ["", f"{label}: statements in order, with the stage that sent each:", "", "```"]
            lines += [f"{_short_sql(q)}" + (f"    [{stage}]" if stage else "") for q, stage in zip(scan["sql"], stages)]
            lines.append("```")
    return lines + [""]


def markdown(results: dict) -> str:
    m = results["machine"]
    runs = _runs(results)
    lines = ["# Benchmark results", ""]
    if len(runs) <= 1:
        lines.append(
            f"`make bench` on {m['date']}, commit {m['git_commit']}; {m['cores']} cores ({m['cpu']}), "
            f"{m['memory_gib']} GiB; load average {m['load_average_start'][0]} at the start, "
            f"{m.get('load_average_end', ['?'])[0]} at the end (other work on the machine); "
            f"wall time {results.get('wall_seconds', 0):.0f} s"
            + (" (**--quick run: smoke test, not figures to keep**)" if results.get("quick") else "") + ".")
    else:
        lines += [f"**Merged results**: `bench/run.py --only` ran some benchmarks and merged their sections "
                  f"into this file; the other sections are those of an earlier run, unchanged. "
                  f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB"
                  + (" (**--quick runs: smoke tests, not figures to keep**)" if results.get("quick") else "")
                  + ". Sections by run:", ""]
        for run, keys in runs:
            how = "full run" if run["only"].startswith("all") else f"`--only {run['only']}`"
            lines.append(f"- {', '.join(SECTION_LABELS.get(k, k) for k in keys)}: {how} on {run['date']}, "
                         f"commit {run['git_commit']}; load average {run['load_average'][0]} at the start, "
                         f"{run['load_average'][1]} at the end; wall time {run['wall_seconds']} s.")
        lines.append("")
    lines += [
        f"Each figure: median (min-max) of {results['repeats']} runs of {results['cell_seconds']} s"
        + (f" ({results['target_repeats']} at {results['target_clients']} clients in section 1's "
           "throughput tables, where the targets are read)"
           if results.get("target_repeats", 0) > results["repeats"] else "")
        + "; ratios are per run, between figures measured side by side.",
        "",
        "## Targets (PostgreSQL; each real endpoint beside its floor, bench/minimal_app.py)",
        "",
        "| target | wanted | measured | met | beside it |",
        "|---|---|---|---|---|",
    ]

    def target_rows(rows):
        for t in rows:
            met = "n/a" if t["met"] is None else ("yes" if t["met"] else f"**no** ({t['missed_by']})")
            lines.append(f"| {t['target']} | {t['threshold']} | {_num(t['value'])} | {met} | "
                         f"{t.get('beside', '')} |")

    target_rows(targets(results, API_TARGETS))
    lines += ["", "CPU per request: the API's (or the floor's) gunicorn workers + PostgreSQL, from /proc, "
              "wrk's own left out; per run, then the median. Throughput ratios: per repeat, of the real "
              "endpoint and its floor measured one after the other, then the median. The floors "
              "(bench/minimal_app.py) do the least a scan or an issue can: authentication, the token's "
              "signature, one transaction with the compare-and-set (scan) or the inserts (issue); its "
              "docstring lists what they leave out that the real endpoints must do."]
    if "growth" in results and "n" in results["growth"].get("scan", {}).get("10k", {}):
        g = results["growth"]
        lines += ["", f"Growth: p99 over every scan of every run, {g['scan']['10k']['n']} scans at 10k "
                  f"forms and {g['scan']['1M']['n']} at {g['large_forms']:,} ({g['repeats']} runs of "
                  f"{g['per_run']} per size, one client, the two sizes alternating; section 2)."]
    lines += ["", "### Other targets", "", "| target | wanted | measured | met | beside it |",
              "|---|---|---|---|---|"]
    target_rows(targets(results, OTHER_TARGETS))
    if results.get("app"):
        from traveller_load import summary

        lines += summary(results["app"])

    if "api" in results or results.get("app"):
        g = results["gunicorn"]
        lines += ["", "## 1. API throughput and latency (gunicorn, wrk on 127.0.0.1)", "",
                  f"gunicorn.conf.py: {g.get('workers')} workers x {g.get('threads')} threads "
                  f"({g.get('worker_class')}). wrk (1 thread) runs on the same 2 cores. "
                  "CPU ms/request: the API's workers + the database server + wrk.", ""]
        for backend, data in results.get("api", {}).items():
            lines += [f"### {backend}", "",
                      "| endpoint | clients | requests/s | p50 ms | p99 ms | errors | vs floor | vs bare | "
                      "CPU ms/req (server) | CPU ms/req (workers + db + wrk) |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            from api_load import ENDPOINTS, LABELS

            for endpoint in (e for e in ENDPOINTS if e in data):
                for clients, cell in data[endpoint].items():
                    ratio = fmt(cell.get("ratio_to_bare"), 3) if "ratio_to_bare" in cell else ""
                    to_floor = fmt(cell.get("ratio_to_floor"), 2) if "ratio_to_floor" in cell else ""
                    server = fmt(cell.get("cpu_ms_server"), 2) if "cpu_ms_server" in cell else ""
                    cpu = " + ".join(f"{fmt(v, 2).split(' ')[0]}" for v in cell["cpu_ms_per_request"].values())
                    flags = []
                    if cell.get("refused"):
                        flags.append(f"{cell['refused']} refused")
                    if cell.get("wrapped"):
                        flags.append(f"{cell['wrapped']} payloads reused")
                    errors = str(cell["errors"]) + (f" ({', '.join(flags)})" if flags else "")
                    lines.append(f"| {LABELS[endpoint]} | {clients} | {fmt(cell['rps'], 0)} | "
                                 f"{fmt(cell['p50_ms'])} | {fmt(cell['p99_ms'])} | {errors} | {to_floor} | "
                                 f"{ratio} | {server} | {cpu} |")
            lines.append("")
        if results.get("app"):
            from traveller_load import markdown as app_markdown

            lines += app_markdown(results["app"])

    if "growth" in results:
        gr = results["growth"]
        if "n" not in gr["scan"]["10k"]:  # results of the suite before the sizes were measured side by side
            lines += ["## 2. Growth (PostgreSQL)", "", "Figures of an earlier version of the benchmark: "
                      "run `--only growth` again.", ""]
        else:
            lines += [f"## 2. Growth: 10 thousand vs {gr['large_forms']:,} forms (PostgreSQL)", "",
                      f"Two databases in two clusters, each with its own gunicorn; one client; {gr['repeats']} "
                      f"runs of {gr['per_run']} requests per size and kind, the sizes alternating. p50/p99 over "
                      f"every request of a size (n); the per-repeat ratio's spread beside it. Loading took "
                      f"{gr['load_10k_s']:.0f} s (10k) and {gr['load_large_s']:.0f} s (large, COPY).", "",
                      "| request | n per size | p50 10k | p50 large | ratio p50 | p99 10k | p99 large | ratio p99 "
                      "| ratio p99 per repeat | errors | refused |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            for what, label in (("scan", "POST /scans (fresh)"), ("queue", "GET /checks?exit_point=AMS")):
                d = gr[what]
                small, large = d["10k"], d["1M"]
                lines.append(f"| {label} | {small['n']} / {large['n']} | {small['p50_ms']:.2f} | "
                             f"{large['p50_ms']:.2f} | {d['ratio_p50_ms']:.2f} | {small['p99_ms']:.2f} | "
                             f"{large['p99_ms']:.2f} | {d['ratio_p99_ms']:.2f} | "
                             f"{fmt(d['ratio_p99_ms_per_repeat'], 2)} | {small['errors'] + large['errors']} | "
                             f"{small['refused'] + large['refused']} |")
            if gr.get("queue_explain_1M"):
                lines += ["", "Queue query plan at the large size:", "", "```"] + gr["queue_explain_1M"][:45] + ["```"]
            lines.append("")

    if "qr" in results:
        q = results["qr"]
        lines += ["## 3. QR decoding (40 camera-like frames, tests/data/frames)", "",
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
        lines += _scan_to_verdict(results["scan_to_verdict"])

    if "bulk" in results:
        b = results["bulk"]
        lines += ["## 5. Bulk issuing", ""]
        if b.get("available"):
            lines.append(f"POST /api/v1/forms/batch, {b['batch_size']} forms a batch: "
                         f"{fmt(b['forms_per_s'], 0)} forms/s (statuses {b['statuses']}). {b.get('note', '')}")
        else:
            lines.append(b["note"])
        lines.append("")

    if "mrz" in results:
        lines += _mrz(results["mrz"])

    p = results.get("profile")
    if p:
        lines += _profile(p)

    if results.get("failures"):
        lines += ["## Failures", ""] + [f"- {k}: {v}" for k, v in results["failures"].items()] + [""]

    v = m["versions"]
    lines += ["## Machine and versions", "",
              f"{m['os']}; Python {m['python']}; " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
              "PostgreSQL is the throwaway cluster of scripts/throwaway-postgres.sh (fsync, "
              "synchronous_commit and full_page_writes off), on the same 2 cores as the API and wrk.", ""]
    return "\n".join(lines)
