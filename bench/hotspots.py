"""Where the time goes: py-spy on the gunicorn workers under load, and the SQL
statements one request sends.

``record`` samples every worker of a running gunicorn (py-spy --subprocesses
--gil: Python CPU only, raw collapsed stacks) while wrk sends fresh scans;
``summarise`` turns the stacks into a few lines: the share of samples in
each layer (self time), the application functions with the largest
inclusive share, and the leaf functions with the most self time.
``statements`` runs one request in-process and lists the SQL it sent. If
py-spy cannot attach (no ptrace), pyinstrument profiles scans in-process.
"""
from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections import Counter
from pathlib import Path

import harness

# Layers by the file path of a frame; a sample belongs to the layer of its
# innermost frame that has one.
LAYERS = [
    ("psycopg (PostgreSQL driver)", ("psycopg/",)),
    ("sqlite3 driver", ("sqlite3/",)),
    ("SQLAlchemy (ORM, Core, pool)", ("sqlalchemy/",)),
    ("pyjwt + cryptography", ("jwt/", "cryptography/")),
    ("marshmallow / webargs / flask-smorest", ("marshmallow/", "webargs/", "flask_smorest/")),
    ("Flask / Werkzeug", ("flask/", "werkzeug/")),
    ("api (this project)", ("api/",)),
    ("shared (this project)", ("shared/",)),
    ("gunicorn", ("gunicorn/",)),
    ("logging", ("logging/",)),
]
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+):(?P<line>\d+)\)$")

# What a scan or an issue spends its time on, by the innermost frame of a
# sample (or of a statement's call stack) that one of these names: (stage,
# file, function names; None for any function of the file). The first
# stages are the work each transaction does as it commits, nested inside
# the commit; the libraries' own layers count only outside the
# application's stages (marshmallow's dump inside a view is marshmallow).
STAGES = [
    ("audit: hash chain links", "api/services/audit_chain.py", None),
    ("change feed marks", "api/services/changes.py", None),
    # PostgreSQL: the marks and the chain's counter in one call
    # (mark_forms_take_chain_numbers).
    ("change feed marks and audit counter", "api/services/audit.py", {"_number_and_link"}),
    ("webhook outbox enqueue", "api/services/webhooks.py", None),
    ("ORM flush (event and check rows)", "sqlalchemy/orm/session.py", {"flush", "_autoflush"}),
    ("audit: event rows", "api/services/audit.py", {"record", "_written", "_with_event", "_with_events",
                                                     "event_for_each"}),
    # One statement on PostgreSQL: a scan's compare-and-set and its scan row
    # (or the scan row alone), with the events they stand for.
    ("compare-and-set / scan row, with its event", "api/services/audit.py",
     {"record_after", "record_pair_after"}),
    # One statement on PostgreSQL: a form issued, its lines and its event.
    ("issue: form, lines and event", "api/services/audit.py", {"record_by"}),
    ("commit (COMMIT, session)", "sqlalchemy/orm/session.py", {"commit"}),
    ("risk engine", "shared/risk.py", None),
    ("facts query", "api/services/scans.py", {"_form_facts"}),
    ("scan row", "api/services/scans.py", {"_record"}),
    ("issue: QR payload signing", "shared/qrtoken.py", {"sign_form_token"}),
    ("QR token verify (PyJWT + Ed25519)", "shared/qrtoken.py", None),
    ("QR token verify (PyJWT + Ed25519)", "api/resources/scans.py", {"_kid"}),
    ("keyring (signing keys cache)", "api/keys.py", None),
    ("idempotency", "api/services/idempotency.py", None),
    ("auth (device row / access token + user row)", "api/auth.py", None),
    ("metrics and request logs", "api/observability/", None),
    ("metrics and request logs", "prometheus_client/", None),
    ("metrics and request logs", "structlog/", None),
    ("metrics and request logs", "logging/", None),
    ("marshmallow / webargs / flask-smorest", "marshmallow/", None),
    ("marshmallow / webargs / flask-smorest", "webargs/", None),
    ("marshmallow / webargs / flask-smorest", "flask_smorest/", None),
    ("issue: rules, totals, QR signing", "shared/", None),
    ("session close (rollback, pool)", "api/database.py", {"_close_session"}),
    ("issue service (other)", "api/services/forms.py", None),
    ("scan service (other)", "api/services/scans.py", None),
    ("idempotency", "api/resources/common.py", {"idempotent", "_json"}),
    ("api (other)", "api/", None),
]
# Outside every stage: the library the innermost frame belongs to.
OUTSIDE = [("Flask / Werkzeug", ("flask/", "werkzeug/")), ("gunicorn (HTTP, sockets)", ("gunicorn/",)),
           ("SQLAlchemy (outside app code)", ("sqlalchemy/",)), ("psycopg (outside app code)", ("psycopg/",))]


def _in(file: str, prefix: str) -> bool:
    return file.startswith(prefix) or f"/{prefix}" in file


# Frames that stand for their caller: a hot statement (api/database.py) is
# the work of whoever runs it, and so is audit's shared helper for the
# statements that write a change with its event.
TRANSPARENT = (("api/database.py", {"execute", "_for", "fetchone", "fetchall", "_row", "__init__", "_execute",
                                     "_cursor", "execute_then_commit"}),
               ("api/services/audit.py", {"_record_by"}))


def stage_of(frames) -> str:
    """The stage of a stack (outermost frame first): its innermost frame
    that a stage names, else the library of its innermost frame that has
    one."""
    for func, file in reversed(frames):
        name = func.rsplit(".", 1)[-1]
        if any(_in(file, prefix) and name in funcs for prefix, funcs in TRANSPARENT):
            continue
        for stage, prefix, funcs in STAGES:
            if _in(file, prefix) and (funcs is None or name in funcs):
                return stage
    for _, file in reversed(frames):
        for name, prefixes in OUTSIDE:
            if any(_in(file, p) for p in prefixes):
                return name
    return "other (stdlib, interpreter)"


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen:
    """Start py-spy on gunicorn master ``pid`` and its workers, sampling only
    threads that hold the GIL (Python CPU time: waiting for the database or
    the network is not in the profile); wait() on the returned process."""
    return subprocess.Popen(
        [str(harness.VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--gil",
         "--format", "raw", "--rate", str(rate), "--duration", str(int(seconds)),
         "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _frames(stack: str):
    for part in stack.split(";"):
        m = FRAME.match(part)
        if m:
            yield m.group("func"), m.group("file")


def summarise(raw: Path, top: int = 8) -> dict:
    """Shares (percent of samples): per layer, each sample counted for the
    innermost frame that belongs to a layer (its self time, stdlib calls
    included in the layer that made them); per application function
    (inclusive); per leaf function (self)."""
    layers, stages, functions, leaves = Counter(), Counter(), Counter(), Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = list(_frames(stack))
        if not frames:
            continue
        n = int(count)
        total += n
        layers[_layer(frames)] += n
        stages[stage_of(frames)] += n
        seen = set()
        for func, file in frames:
            if file.startswith(("api/", "shared/")) and (func, file) not in seen:
                seen.add((func, file))
                functions[f"{file.removesuffix('.py')}.{func}"] += n
        func, file = frames[-1]
        leaves[f"{func} ({file})"] += n

    def pct(counter, top=top):
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)] if total else []

    return {"samples": total, "layers": pct(layers), "stages": pct(stages, None),
            "app_functions": pct(functions), "self": pct(leaves)}


def _layer(frames) -> str:
    for _, file in reversed(frames):
        for name, prefixes in LAYERS:
            if file.startswith(prefixes) or any(f"/{p}" in file for p in prefixes):
                return name
    return "other (stdlib, interpreter)"


def _stack_frames() -> list[tuple[str, str]]:
    """The caller's stack as (function, file) like py-spy names them: the
    project's files relative to the checkout, libraries' from their
    package folder on."""
    import traceback

    root = str(harness.ROOT) + "/"
    out = []
    for frame in traceback.extract_stack()[:-2]:
        file = frame.filename
        if file.startswith(root):
            file = file[len(root):]
        elif "site-packages/" in file:
            file = file.split("site-packages/", 1)[1]
        out.append((frame.name, file))
    return out


def statements(app, method: str, path: str, headers: dict, json_body=None, full: bool = False,
               stages: bool = False) -> list:
    """The SQL statements one request sends, in order, with milliseconds
    each, measured in-process: (first 110 characters, ms), or with
    ``full`` (statement, ms, parameters); with ``stages`` each also names
    the stage (``STAGES``) that sent it."""
    from sqlalchemy import event

    engine = app.extensions["db_engine"]
    seen: list = []

    def before(conn, cursor, statement, params, context, executemany):
        conn.info["bench_t"] = time.perf_counter()
        if stages:
            conn.info["bench_stage"] = stage_of(_stack_frames())

    def after(conn, cursor, statement, params, context, executemany):
        ms = (time.perf_counter() - conn.info.pop("bench_t")) * 1000
        entry = (statement, ms, params) if full else (" ".join(statement.split())[:110], ms)
        seen.append(entry + ((conn.info.pop("bench_stage"),) if stages else ()))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        response = app.test_client().open(path, method=method, headers=headers, json=json_body)
        assert response.status_code < 400, response.get_data(as_text=True)[:300]
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return seen


def pyinstrument_text(app, method: str, path: str, headers: dict, bodies: list, out: Path) -> str:
    """pyinstrument over many in-process requests (one per body); the text
    report is written to ``out`` and its top returned."""
    from pyinstrument import Profiler

    client = app.test_client()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for body in bodies:
        client.open(path, method=method, headers=headers, json=body)
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    out.write_text(text)
    return text


def _profile_load(api, url: str, body_file: str, token: str, db_pid: int, seconds: float, clients: int,
                  out: Path) -> tuple[dict, dict]:
    """py-spy over every worker of ``api`` while wrk sends the bodies of
    ``body_file``: (wrk's figures, the summary or the error)."""
    spy = record(api.pid, seconds, out)
    time.sleep(0.5)
    load = harness.wrk(url, "payloads.lua", clients, seconds - 1.5, [body_file, token],
                       cpu_of={"api": api.pid, "db": db_pid})
    _, err = spy.communicate(timeout=60)
    profile = summarise(out) if out.exists() else {"error": (err or "py-spy wrote nothing")[-300:]}
    if "stages" in profile:  # the share of each stage in the workers' CPU per request
        worker_ms = load["cpu_ms_per_request"]["api"]
        profile["stage_ms"] = [(stage, round(worker_ms * share / 100, 3)) for stage, share in profile["stages"]]
    return {k: load[k] for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "requests")}, profile


def run(world, feed, db_pid: int, seconds: float = 6, clients: int = 32) -> dict:
    """py-spy over the gunicorn workers while wrk sends fresh scans, then
    re-scans; the SQL statements of one request of each kind, each with
    the stage that sent it."""
    import fixture

    result = {"clients": clients, "seconds": seconds}
    with harness.gunicorn("api:create_app()", world.env, "api-profile") as api:
        url = api.base + "/api/v1/scans"
        # The warm-up's forms are re-scanned below.
        rescans = feed.payloads[feed.offset:feed.offset + 3000]
        warm = harness.wrk(url, "payloads.lua", 8, 1, [feed.file(3000), world.device_token])
        feed.used(warm["requests"], 8)
        rescan_file = harness.WORK / "rescans-profile.jsonl"
        rescan_file.write_text("".join(json.dumps({"qr_payload": p}) + "\n" for p in rescans[:warm["requests"]]))
        result["load"], fresh = _profile_load(api, url, feed.file(), world.device_token, db_pid, seconds,
                                              clients, harness.WORK / "scan-profile.raw")
        feed.used(result["load"]["requests"], clients)
        result["rescan_load"], rescan = _profile_load(api, url, str(rescan_file), world.device_token, db_pid,
                                                      seconds, clients, harness.WORK / "rescan-profile.raw")
    with fixture.environment(world.env):
        from api import create_app

        app = create_app()
    try:
        device = {"Authorization": f"Bearer {world.device_token}"}
        if "error" not in fresh:
            result["py_spy"], result["py_spy_rescan"] = fresh, rescan
        else:
            result["py_spy_error"] = fresh["error"]
            bodies = [{"qr_payload": p} for p in feed.payloads[feed.offset:feed.offset + 300]]
            feed.used(len(bodies), 0)
            text = pyinstrument_text(app, "POST", "/api/v1/scans", device, bodies,
                                     harness.WORK / "scan-pyinstrument.txt")
            result["pyinstrument_top"] = text.splitlines()[:40]
        fresh_body = {"qr_payload": feed.payloads[feed.offset]}
        keyed_body = {"qr_payload": feed.payloads[feed.offset + 1]}
        feed.used(2, 0)
        requests_ = {
            "POST /scans (fresh form)": ("POST", "/api/v1/scans", device, fresh_body),
            "POST /scans (re-scan)": ("POST", "/api/v1/scans", device, fresh_body),
            "POST /scans (fresh form, with Idempotency-Key as kiosks send it)": (
                "POST", "/api/v1/scans", dict(device, **{"Idempotency-Key": secrets.token_hex(16)}), keyed_body),
            "POST /forms": ("POST", "/api/v1/forms", {"Authorization": f"Bearer {world.shop_token}"},
                            _form_body()),
            "GET /checks?exit_point=AMS": ("GET", "/api/v1/checks?exit_point=AMS",
                                           {"Authorization": f"Bearer {world.officer_token}"}, None),
        }
        # One warm-up request first (a scan of another fresh form, a form with
        # another invoice), so caches are as warm as under load.
        warm_up = {"POST /scans (fresh form)": {"qr_payload": feed.payloads[feed.offset]},
                   "POST /scans (fresh form, with Idempotency-Key as kiosks send it)": {
                       "qr_payload": feed.payloads[feed.offset + 1]},
                   "POST /forms": _form_body()}
        feed.used(2, 0)
        result["statements"] = {}
        for label, (method, path, headers, json_body) in requests_.items():
            warm_headers = {k: v for k, v in headers.items() if k != "Idempotency-Key"}
            if "Idempotency-Key" in headers:
                warm_headers["Idempotency-Key"] = secrets.token_hex(16)
            statements(app, method, path, warm_headers, warm_up.get(label, json_body))
            sql = statements(app, method, path, headers, json_body, full=True, stages=True)
            result["statements"][label] = {
                "count": len(sql), "ms": round(sum(ms for _, ms, _, _ in sql), 2),
                "sql": [" ".join(s.split()) for s, _, _, _ in sql],
                "stages": [stage for _, _, _, stage in sql],
                "by_stage": _by_stage(sql)}
    finally:
        app.extensions["db_engine"].dispose()
    return result


def _by_stage(sql: list) -> list:
    """(stage, statements, ms) in the order the stages first sent one."""
    out: dict = {}
    for _, ms, _, stage in sql:
        count, total = out.get(stage, (0, 0.0))
        out[stage] = (count + 1, total + ms)
    return [(stage, count, round(total, 2)) for stage, (count, total) in out.items()]


def _form_body() -> dict:
    from datetime import date, timedelta
    import secrets

    return {"invoice_number": "PROFILE-" + secrets.token_hex(4),
            "purchase_date": (date.today() - timedelta(days=1)).isoformat(),
            "traveller": {"first_name": "Mei", "last_name": "Chen", "passport_number": "P1234567",
                          "passport_country": "CN", "nationality": "CN", "residence_country": "CN",
                          "date_of_birth": "1988-03-14"},
            "items": [{"description": "Wool coat", "quantity": 1, "unit_price_cents": 12100,
                       "vat_rate": 21, "category": "clothing"}]}
