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

import re
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
    layers, functions, leaves = Counter(), Counter(), Counter()
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
        seen = set()
        for func, file in frames:
            if file.startswith(("api/", "shared/")) and (func, file) not in seen:
                seen.add((func, file))
                functions[f"{file.removesuffix('.py')}.{func}"] += n
        func, file = frames[-1]
        leaves[f"{func} ({file})"] += n

    def pct(counter):
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)] if total else []

    return {"samples": total, "layers": pct(layers), "app_functions": pct(functions), "self": pct(leaves)}


def _layer(frames) -> str:
    for _, file in reversed(frames):
        for name, prefixes in LAYERS:
            if file.startswith(prefixes) or any(f"/{p}" in file for p in prefixes):
                return name
    return "other (stdlib, interpreter)"


def statements(app, method: str, path: str, headers: dict, json_body=None, full: bool = False) -> list:
    """The SQL statements one request sends, in order, with milliseconds
    each, measured in-process: (first 110 characters, ms), or with
    ``full`` (statement, ms, parameters)."""
    from sqlalchemy import event

    engine = app.extensions["db_engine"]
    seen: list = []

    def before(conn, cursor, statement, params, context, executemany):
        conn.info["bench_t"] = time.perf_counter()

    def after(conn, cursor, statement, params, context, executemany):
        ms = (time.perf_counter() - conn.info.pop("bench_t")) * 1000
        seen.append((statement, ms, params) if full else (" ".join(statement.split())[:110], ms))

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


def run(world, feed, db_pid: int, seconds: float = 6, clients: int = 32) -> dict:
    """py-spy over the gunicorn workers while wrk sends fresh scans, and the
    SQL statements of one request of each kind."""
    import fixture

    out = harness.WORK / "scan-profile.raw"
    with harness.gunicorn("api:create_app()", world.env, "api-profile") as api:
        url = api.base + "/api/v1/scans"
        warm = harness.wrk(url, "payloads.lua", 8, 1, [feed.file(3000), world.device_token])
        feed.used(warm["requests"], 8)
        spy = record(api.pid, seconds, out)
        time.sleep(0.5)
        load = harness.wrk(url, "payloads.lua", clients, seconds - 1.5, [feed.file(), world.device_token],
                           cpu_of={"api": api.pid, "db": db_pid})
        feed.used(load["requests"], clients)
        _, err = spy.communicate(timeout=60)
    result = {"load": {k: load[k] for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")},
              "clients": clients}
    with fixture.environment(world.env):
        from api import create_app

        app = create_app()
    try:
        device = {"Authorization": f"Bearer {world.device_token}"}
        if out.exists():
            result["py_spy"] = summarise(out)
        else:
            result["py_spy_error"] = (err or "py-spy wrote nothing")[-300:]
            bodies = [{"qr_payload": p} for p in feed.payloads[feed.offset:feed.offset + 300]]
            feed.used(len(bodies), 0)
            text = pyinstrument_text(app, "POST", "/api/v1/scans", device, bodies,
                                     harness.WORK / "scan-pyinstrument.txt")
            result["pyinstrument_top"] = text.splitlines()[:40]
        fresh = feed.payloads[feed.offset]
        feed.used(1, 0)
        body = {"qr_payload": fresh}
        requests_ = {
            "POST /scans (fresh form)": ("POST", "/api/v1/scans", device, body),
            "POST /scans (re-scan)": ("POST", "/api/v1/scans", device, body),
            "POST /forms": ("POST", "/api/v1/forms", {"Authorization": f"Bearer {world.shop_token}"},
                            _form_body()),
            "GET /checks?exit_point=AMS": ("GET", "/api/v1/checks?exit_point=AMS",
                                           {"Authorization": f"Bearer {world.officer_token}"}, None),
        }
        # One warm-up request first (a scan of another fresh form, a form with
        # another invoice), so caches are as warm as under load.
        warm_up = {"POST /scans (fresh form)": {"qr_payload": feed.payloads[feed.offset]},
                   "POST /forms": _form_body()}
        feed.used(1, 0)
        result["statements"] = {}
        for label, (method, path, headers, json_body) in requests_.items():
            statements(app, method, path, headers, warm_up.get(label, json_body))
            sql = statements(app, method, path, headers, json_body, full=True)
            result["statements"][label] = {"count": len(sql), "ms": round(sum(ms for _, ms, _ in sql), 2),
                                           "sql": [" ".join(s.split()) for s, _, _ in sql]}
    finally:
        app.extensions["db_engine"].dispose()
    return result


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
