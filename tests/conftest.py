"""Fixtures shared by the whole suite.

API tests run once on SQLite and once on PostgreSQL (the throwaway cluster
that ``make test`` starts and names in TEST_POSTGRES_URL). Each test gets an
empty, migrated database.
"""
from __future__ import annotations

import json
import os
import shutil
import threading

import pytest
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from api import create_app
from api.cli import migrate
from api.config import KEYS_KEPT_OUTSIDE
from tests.builders import PASSWORD, World

# One set of the keys kept outside the database (passport keys, audit chain
# key, ...) for every app, gunicorn and worker subprocess the suite starts,
# as a deployment shares them across its machines: events written by a
# subprocess link into the same chain, passport numbers it encrypts open
# here. Production (PostgreSQL) requires them from the environment.
for _name, _make in KEYS_KEPT_OUTSIDE.items():
    os.environ.setdefault(_name, _make())

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_POSTGRES_URL") else [])


def pytest_report_header(config):
    if "postgresql" not in BACKENDS:
        return "TEST_POSTGRES_URL is not set: API tests run on SQLite only (make test runs both)"
    return "API tests run on SQLite and PostgreSQL"


def pytest_configure(config):
    if os.environ.get("CI") and "postgresql" not in BACKENDS:
        raise pytest.UsageError("CI must test PostgreSQL too: run the suite with make test")


# --- figures of fault and attack tests ------------------------------------
# A fault or attack test reports what it saw (requests sent, lost,
# duplicated, errors ...) with the ``figures`` fixture. The figures are
# printed at the end of the run and, with RELIABILITY_FIGURES=path, written
# as JSON for scripts/reliability_report.py, which makes docs/reliability.md.

@pytest.fixture
def figures(request):
    """``figures(sent=50, lost=0, duplicated=0, errors=0)``: counts this test observed."""
    def note(**counts):
        request.node.user_properties.append(("figures", counts))
    return note


def _reported_figures(terminalreporter) -> dict[str, dict]:
    seen = {}
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        if report.when != "call":
            continue
        counts = {}
        for name, value in report.user_properties:
            if name == "figures":
                counts.update(value)
        if counts:
            seen[report.nodeid] = {"outcome": report.outcome, **counts}
    return seen


def pytest_terminal_summary(terminalreporter):
    seen = _reported_figures(terminalreporter)
    if not seen:
        return
    terminalreporter.section("fault and attack figures")
    for nodeid, counts in seen.items():
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "outcome")
        terminalreporter.write_line(f"{nodeid}: {shown}")
    path = os.environ.get("RELIABILITY_FIGURES")
    if path:
        with open(path, "w") as out:
            json.dump(seen, out, indent=1, sort_keys=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file, copied for each test (faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    url = os.environ["TEST_POSTGRES_URL"]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(url)
    tables = None
    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'alembic_version'"))]
    engine.dispose()
    return url, tables


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url, tables = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        # No random checks unless a test asks for them.
        "RISK_POLICY": {"sample_rate": 0.0},
        # Password hashing is made slow on purpose; tests log in a lot.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    })
    from api import database, keys
    from shared import risk

    app.config["RISK"] = risk.policy_from_dict(app.config["RISK_POLICY"])
    with app.app_context():
        keys.ensure_key(database.session())
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def live_server(app):
    """The app on a real HTTP server on 127.0.0.1, many requests at once."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def world(client, runner) -> World:
    """An admin made with the CLI, exit points AMS and RTM, an intermediary,
    retailers, users of every role and kiosks, all through the API."""
    result = runner.invoke(args=["create-user", "root", "--role", "admin", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    w = World(client)
    w.login("root")

    def admin_post(path, body):
        r = w.post("root", path, body)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    admin_post("/api/v1/exit-points", {"code": "AMS", "name": "Schiphol", "kind": "airport",
                                       "desk_location": "Departures 2"})
    admin_post("/api/v1/exit-points", {"code": "RTM", "name": "Rotterdam", "kind": "seaport"})
    w.ids["intermediary"] = admin_post("/api/v1/intermediaries", {"name": "Refunds Inc", "fee_bp": 1000})["id"]
    w.ids["other_intermediary"] = admin_post("/api/v1/intermediaries", {"name": "Other Refunds"})["id"]
    w.ids["shop"] = admin_post("/api/v1/retailers", {
        "vat_number": "NL859559001B01", "name": "Watch House", "intermediary_id": w.ids["intermediary"]})["id"]
    w.ids["books"] = admin_post("/api/v1/retailers", {"vat_number": "NL000099998B57", "name": "Bookshop"})["id"]
    for username, role, extra in [
        ("shop", "retailer", {"retailer_id": w.ids["shop"]}),
        ("books", "retailer", {"retailer_id": w.ids["books"]}),
        ("refunds", "intermediary", {"intermediary_id": w.ids["intermediary"]}),
        ("other", "intermediary", {"intermediary_id": w.ids["other_intermediary"]}),
        ("officer", "officer", {}),
        ("officer2", "officer", {}),
    ]:
        admin_post("/api/v1/users", {"username": username, "password": PASSWORD, "role": role, **extra})
        w.login(username)
    for name, exit_point in [("kiosk", "AMS"), ("rtm-kiosk", "RTM")]:
        device = admin_post("/api/v1/devices", {"name": name, "kind": "kiosk", "exit_point": exit_point})
        w.devices[name] = device["token"]
        w.ids[name] = device["id"]
    # Both officers work at the Schiphol desk.
    for officer in ("officer", "officer2"):
        w.sign_on(officer, "AMS")
    return w
