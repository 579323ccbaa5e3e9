"""A database restart while the API serves: requests fail with 503 problem
details while it is down and succeed again after, without restarting the API.

The API runs under gunicorn (two workers, each with its own connection
pool) on a PostgreSQL cluster of its own, so stopping it disturbs no other
test. A kiosk keeps scanning through the outage, retrying each scan with its
Idempotency-Key as the kiosk app does: every scan ends up recorded once."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from api import create_app
from api.cli import migrate
from shared import risk
from tests.builders import item, traveller
from tests.servers import free_port, gunicorn_command, server_environment, serving

ROOT = Path(__file__).resolve().parents[2]
PG = str(ROOT / "scripts" / "throwaway-postgres.sh")
FORMS = 40


@pytest.fixture
def cluster():
    # Under /tmp, which the postgres user can reach.
    directory = tempfile.mkdtemp(prefix="taxfree-outage-")
    shutil.rmtree(directory)
    url = subprocess.run([PG, "start", directory], check=True, capture_output=True, text=True).stdout.strip()
    try:
        migrate(url)
        yield directory, url
    finally:
        subprocess.run([PG, "stop", directory], capture_output=True)


@pytest.fixture
def database_url(cluster):
    """Every fixture of this module (app, world) uses the outage cluster."""
    return cluster[1]


@pytest.fixture
def api_url(app, database_url, tmp_path):
    port = free_port()
    env = server_environment(app, database_url, tmp_path / "gunicorn")
    with serving(gunicorn_command(port, workers=2), port, env, ready="/readyz") as url:
        yield url


class Kiosk(threading.Thread):
    """Scans each form once, retrying the same request (same Idempotency-Key)
    after a 503 or a dropped connection until the API acknowledges it."""

    def __init__(self, url, token, payloads):
        super().__init__(daemon=True)
        self.url, self.token, self.payloads = url, token, payloads
        self.sent = 0
        self.acknowledged: list[dict] = []
        self.unavailable: list[requests.Response] = []
        self.connection_errors = 0
        self.other: list[tuple[int, str]] = []
        self.resume = threading.Event()  # paced while the database is up, so the outage falls mid-run

    def run(self):
        with requests.Session() as http:
            for payload in self.payloads:
                key = str(uuid.uuid4())
                for _ in range(2000):  # bounded: about a minute of retries per scan
                    self.sent += 1
                    try:
                        r = http.post(f"{self.url}/api/v1/scans", json={"qr_payload": payload}, timeout=30,
                                      headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key})
                    except requests.ConnectionError:
                        self.connection_errors += 1
                        time.sleep(0.03)
                        continue
                    if r.status_code == 503:
                        self.unavailable.append(r)
                        time.sleep(0.03)  # the API says 5 s; a test need not wait that long
                        continue
                    if r.status_code == 200:
                        self.acknowledged.append(r.json())
                    else:
                        self.other.append((r.status_code, r.text[:200]))
                    break
                time.sleep(0.02)


def test_the_api_answers_503_while_postgresql_restarts_and_recovers_by_itself(
        cluster, world, api_url, figures):
    directory, _ = cluster
    # One form per traveller: five forms in a week would send them to the desk.
    forms = [world.issue("shop", item(), traveller=traveller(passport_number=f"E{n:08d}"))
             for n in range(FORMS)]
    kiosk = Kiosk(api_url, world.devices["kiosk"], [f["qr_payload"] for f in forms])
    kiosk.start()

    def wait_for(condition, what, seconds=60):
        deadline = time.monotonic() + seconds
        while not condition():
            assert kiosk.is_alive() or condition(), f"the kiosk stopped before {what}"
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            time.sleep(0.01)

    wait_for(lambda: len(kiosk.acknowledged) >= 10, "ten scans before the outage")
    subprocess.run([PG, "pause", directory], check=True, capture_output=True)
    acknowledged_before = len(kiosk.acknowledged)
    wait_for(lambda: len(kiosk.unavailable) >= 20, "503 answers during the outage")
    ready = requests.get(f"{api_url}/readyz", timeout=30)
    assert (ready.status_code, ready.headers["Content-Type"]) == (503, "application/problem+json")
    subprocess.run([PG, "resume", directory], check=True, capture_output=True)
    kiosk.join(120)

    assert not kiosk.is_alive()
    assert kiosk.other == []
    assert len(kiosk.acknowledged) == FORMS
    assert acknowledged_before < FORMS, "the outage fell after the last scan"
    for r in kiosk.unavailable:
        problem = r.json()
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.headers["Retry-After"] == "5"
        assert (problem["status"], problem["code"]) == (503, "database_unavailable")
    # Each scan counted once: one validation and one scan event per form.
    assert sorted(v["form_id"] for v in kiosk.acknowledged) == sorted(f["id"] for f in forms)
    assert {v["verdict"] for v in kiosk.acknowledged} == {"validated"}
    duplicated = 0
    for form in forms:
        types = [e["type"] for e in world.get("shop", f"/api/v1/forms/{form['id']}/events").get_json()["items"]]
        assert types == ["form.issued", "form.validated", "form.scanned"], types
        duplicated += types.count("form.scanned") - 1
    assert requests.get(f"{api_url}/readyz", timeout=30).status_code == 200
    figures(sent=kiosk.sent, scans=FORMS, acknowledged=len(kiosk.acknowledged),
            answered_503=len(kiosk.unavailable), connection_errors=kiosk.connection_errors,
            lost=FORMS - len(kiosk.acknowledged), duplicated=duplicated, other_errors=len(kiosk.other))


def _drop_the_apis_connections(url: str) -> int:
    """Close every other connection to the database from the server side,
    as a restart or a firewall does; how many were closed."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        engine.dispose()


def test_a_pooled_connection_dropped_while_idle_is_replaced_before_a_request_uses_it(app, world, database_url):
    form = world.issue("shop")
    assert _drop_the_apis_connections(database_url) >= 1
    time.sleep(app.config["DATABASE_PING_AFTER_IDLE_SECONDS"] + 0.2)

    r = world.scan("kiosk", form["qr_payload"])

    assert r.status_code == 200, r.get_json()
    assert r.get_json()["verdict"] == "validated"


def test_a_connection_dropped_between_busy_requests_fails_one_request_and_the_pool_recovers(
        world, database_url, tmp_path, monkeypatch):
    """No ping for a connection that just came back: a drop in that moment
    costs one 503, which kiosks retry; the next request gets a new
    connection."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "busy"))
    busy = create_app({"TESTING": True, "DATABASE_URL": database_url, "RISK_POLICY": {"sample_rate": 0.0},
                       "DATABASE_PING_AFTER_IDLE_SECONDS": 3600})
    busy.config["RISK"] = risk.policy_from_dict(busy.config["RISK_POLICY"])
    client = busy.test_client()
    kiosk = {"Authorization": f"Bearer {world.devices['kiosk']}"}
    forms = [world.issue("shop", traveller=traveller(passport_number=f"B{n:08d}")) for n in range(2)]
    try:
        assert client.post("/api/v1/scans", json={"qr_payload": forms[0]["qr_payload"]},
                           headers=kiosk).status_code == 200
        _drop_the_apis_connections(database_url)

        failed = client.post("/api/v1/scans", json={"qr_payload": forms[1]["qr_payload"]}, headers=kiosk)
        retried = client.post("/api/v1/scans", json={"qr_payload": forms[1]["qr_payload"]}, headers=kiosk)
    finally:
        busy.extensions["db_engine"].dispose()

    assert (failed.status_code, failed.get_json()["code"], failed.headers["Retry-After"]) == (
        503, "database_unavailable", "5")
    assert (retried.status_code, retried.get_json()["verdict"]) == (200, "validated")
