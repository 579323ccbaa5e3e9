"""Crashes during writes: the API server and the webhook delivery worker
killed with SIGKILL mid-burst, and started again.

Tills keep issuing forms through the kills, retrying each request with its
Idempotency-Key until it is acknowledged: afterwards every acknowledged
form is stored exactly once, with all its lines and its one form.issued
event, and a retry replays the first answer. The delivery worker is killed
with a request in flight and between the receiver's answer and its record
of it: every event still reaches the receiver, signed, any repeat under the
same webhook-id with the same body. Told to stop (SIGTERM), the worker
finishes the request it is making, gives back its leases and exits 0.

Real processes throughout: gunicorn and ``flask deliver-webhooks`` in their
own process groups, a receiver on 127.0.0.1, the test's database (SQLite
file, PostgreSQL)."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from standardwebhooks import Webhook as SignatureCheck

from api.auth import Principal
from api.models import Event, Form, FormLine, IdempotencyRecord, WebhookDelivery, utcnow
from api.schemas import FormCreate
from api.services import forms
from tests.builders import TODAY, form_body, item
from tests.servers import ROOT, free_port, gunicorn_command, server_environment

# --- processes killed and started again ------------------------------------------


class Restartable:
    """A command run in a process group of its own (gunicorn: the master and
    its workers), so that one SIGKILL takes down all of it at once."""

    def __init__(self, command: list[str], env: dict, log: Path):
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:  # already gone
            pass

    def kill(self) -> None:
        """SIGKILL, nothing gets to clean up; returns once the group leader is reaped."""
        self.signal(signal.SIGKILL)
        self.process.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        # Workers outliving a killed master would hold the port and the database.
        self.signal(signal.SIGKILL)


def wait_until(condition, what: str, timeout: float = 120, every: float = 0.05):
    """Poll ``condition`` until it returns something true; a generous bound
    so that a stuck run fails instead of hanging (not a speed check)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(every)


def assert_intact(database_url: str) -> None:
    """An SQLite file written by processes killed mid-write is undamaged:
    the next open rolls its write-ahead log back or forward."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def serving(server: Restartable, url: str) -> bool:
    assert server.process.poll() is None, "the server exited:\n" + server.output()[-3000:]
    try:
        return requests.get(url + "/readyz", timeout=10).ok
    except requests.RequestException:  # not listening yet, or a worker still booting
        return False


# --- the server killed during a burst of form submissions ------------------------

FORMS = 150
TILLS = 8
KILL_AFTER = (25, 60, 95)        # forms acknowledged before each kill
RETRY_FOR_SECONDS = 120          # per form: a till gives up after this long


def planned_forms() -> list[tuple[str, dict]]:
    """(Idempotency-Key, body) of every form the tills issue: each its own
    invoice, two to five lines at different prices and VAT rates."""
    plan = []
    for n in range(FORMS):
        lines = [item(1500 + 37 * n + 250 * k, quantity=1 + k % 3, vat_rate=(21, 9)[k % 2],
                      category=("clothing", "books")[k % 2])
                 for k in range(2 + n % 4)]
        plan.append((f"till-{n % TILLS}-{n:04d}",
                     form_body(*lines, invoice=f"CRASH-{n:04d}", purchase_date=TODAY - timedelta(days=1))))
    return plan


class Tills:
    """Tills issuing forms from threads, each retrying a request that got
    no answer (connection refused or reset) or a 5xx with the same
    Idempotency-Key and body until it is acknowledged (201)."""

    def __init__(self, url: str, token: str, plan: list[tuple[str, dict]]):
        self.url, self.token = url, token
        self.shares = [plan[n::TILLS] for n in range(TILLS)]
        self.lock = threading.Lock()
        self.acknowledged: dict[str, dict] = {}     # key -> body of the 201
        self.replayed_on_retry: list[str] = []      # acknowledged by a replay of an attempt that had committed
        self.retried = 0
        self.no_answer = 0                          # refused, reset, cut off: retried
        self.server_errors: Counter = Counter()     # 5xx by problem code: retried
        self.unexpected: list[tuple[str, int, dict]] = []
        self.gave_up: list[str] = []
        self.sent = 0
        self.in_flight = 0
        self.threads = [threading.Thread(target=self.run, args=(share,), daemon=True) for share in self.shares]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout: float):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(deadline - time.monotonic(), 0))
        return not any(t.is_alive() for t in self.threads)

    def run(self, share):
        headers = {"Authorization": f"Bearer {self.token}"}
        with requests.Session() as http:
            for key, body in share:
                self.issue(http, key, body, headers)

    def issue(self, http, key, body, headers):
        with self.lock:
            self.sent += 1
        give_up = time.monotonic() + RETRY_FOR_SECONDS
        while time.monotonic() < give_up:
            with self.lock:
                self.in_flight += 1
            try:
                r = http.post(self.url + "/api/v1/forms", json=body, timeout=(10, 60),
                              headers={**headers, "Idempotency-Key": key})
            except requests.RequestException:
                reason = None
            else:
                if r.status_code == 201:
                    with self.lock:
                        self.acknowledged[key] = r.json()
                        if r.headers.get("Idempotent-Replayed") == "true":
                            self.replayed_on_retry.append(key)
                    return
                if r.status_code < 500:
                    with self.lock:
                        self.unexpected.append((key, r.status_code, r.json()))
                    return
                reason = f"{r.status_code} {r.json().get('code')}"
            finally:
                with self.lock:
                    self.in_flight -= 1
            with self.lock:
                self.retried += 1
                if reason is None:
                    self.no_answer += 1
                else:
                    self.server_errors[reason] += 1
            time.sleep(random.uniform(0.05, 0.2))
        with self.lock:
            self.gave_up.append(key)


def committed_keys(app, keys_by_invoice: dict[str, str]) -> set[str]:
    """The Idempotency-Keys of the forms in the database."""
    with app.extensions["db_sessionmaker"]() as session:
        return {keys_by_invoice[invoice] for invoice in session.scalars(select(Form.invoice_number))}


def kill_after_a_commit(server: Restartable, tills: Tills, app, keys_by_invoice: dict[str, str],
                        tries: int = 15) -> tuple[set[str], int, int]:
    """Kill the server right after a form committed and before its 201
    reached the till, if that moment can be caught: the server is frozen
    (SIGSTOP) as soon as a new form shows in the database, and killed if
    the till has not got the answer by then; otherwise it runs on and the
    next commit is tried (each try lets about one form through: ``tries``
    stays well below the forms left after the last kill). Returns the keys
    whose answer was lost, the requests in flight when it was killed, and
    how often it was frozen."""
    for freezes in range(1, tries + 1):
        seen = committed_keys(app, keys_by_invoice)
        wait_until(lambda: committed_keys(app, keys_by_invoice) - seen or not tills.in_flight,
                   "a form to commit", every=0.001)
        server.signal(signal.SIGSTOP)
        # Answers written before the freeze reach their tills meanwhile
        # (given a second look: the tills' threads may be slow to run).
        for _look in range(2):
            time.sleep(0.5)
            with tills.lock:
                lost = committed_keys(app, keys_by_invoice) - set(tills.acknowledged)
                in_flight = tills.in_flight
            if not lost:
                break
        if lost or freezes == tries:
            server.kill()
            return lost, in_flight, freezes
        server.signal(signal.SIGCONT)


def test_forms_acknowledged_while_the_server_is_killed_are_stored_once_with_all_their_lines(
        app, world, database_url, tmp_path, figures):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_environment(app, database_url, tmp_path / "gunicorn")
    server = Restartable(gunicorn_command(port, workers=2), env, tmp_path / "gunicorn.log")
    plan = planned_forms()
    tills = Tills(url, world.tokens["shop"], plan)
    in_flight_at_kill = []
    answers_lost = set()   # keys whose form committed but whose 201 never left the server
    freezes = 0
    try:
        server.start()
        wait_until(lambda: serving(server, url), "gunicorn to serve")
        tills.start()
        for threshold in KILL_AFTER:
            wait_until(lambda: len(tills.acknowledged) >= threshold and tills.in_flight > 0,
                       f"{threshold} forms acknowledged and a request in flight", every=0.01)
            lost, in_flight, frozen = kill_after_a_commit(
                server, tills, app, {body["invoice_number"]: key for key, body in plan})
            answers_lost |= lost
            in_flight_at_kill.append(in_flight)
            freezes += frozen
            server.start()
            wait_until(lambda: serving(server, url), "gunicorn to serve again")
        assert tills.join(RETRY_FOR_SECONDS * 2), "a till never finished"

        # Every key again: the first answer, replayed, whatever the kills cut off.
        with requests.Session() as http:
            replays = {
                key: http.post(url + "/api/v1/forms", json=body, timeout=60, headers={
                    "Authorization": f"Bearer {world.tokens['shop']}", "Idempotency-Key": key})
                for key, body in plan
            }
    finally:
        server.stop()

    assert tills.unexpected == [] and tills.gave_up == []
    assert set(tills.acknowledged) == {key for key, _ in plan}
    # A form committed just before the kill: the retry got the first answer.
    assert answers_lost <= set(tills.replayed_on_retry), (answers_lost, tills.replayed_on_retry)
    # A 503 (SQLite busy, a database hiccup) is retried like a dropped
    # connection; a 500 would be a bug.
    assert {reason.split()[0] for reason in tills.server_errors} <= {"503"}, tills.server_errors
    assert all(n >= 1 for n in in_flight_at_kill), in_flight_at_kill
    for key, r in replays.items():
        assert (r.status_code, r.headers.get("Idempotent-Replayed")) == (201, "true"), (key, r.text)
        assert r.json() == tills.acknowledged[key], key
    first_ids = {key: body["id"] for key, body in tills.acknowledged.items()}
    assert len(set(first_ids.values())) == FORMS

    bodies = dict(plan)
    sessions = app.extensions["db_sessionmaker"]
    with app.app_context(), sessions() as session:
        stored = {f.id: f for f in session.scalars(select(Form))}
        lines = defaultdict(list)
        for line in session.scalars(select(FormLine).order_by(FormLine.form_id, FormLine.line)):
            lines[line.form_id].append(line)
        issued = Counter(session.scalars(select(Event.form_id).where(Event.type == "form.issued")))
        records = {r.key: r for r in session.scalars(select(IdempotencyRecord))}
    # Exactly the acknowledged forms, each once: nothing lost, nothing twice.
    assert sorted(stored) == sorted(first_ids.values())
    assert Counter(f.invoice_number for f in stored.values()) == Counter(
        {body["invoice_number"]: 1 for body in bodies.values()})
    assert {key: r.response_body["id"] for key, r in records.items()} == first_ids
    assert issued == Counter({form_id: 1 for form_id in stored})
    for key, form_id in first_ids.items():
        form, sent = stored[form_id], bodies[key]
        assert form.invoice_number == sent["invoice_number"]
        assert [(l.line, l.quantity, l.unit_price_cents) for l in lines[form_id]] == [
            (n, i["quantity"], i["unit_price_cents"]) for n, i in enumerate(sent["items"], start=1)]
        assert form.total_cents == sum(l.total_cents for l in lines[form_id])
        assert form.vat_cents == sum(l.vat_cents for l in lines[form_id])
    forms_without_lines = sum(1 for form_id in stored if not lines[form_id])
    assert forms_without_lines == 0
    # And through the API: the shop sees exactly these forms, in full.
    listed = world.get("shop", "/api/v1/forms?limit=200").get_json()
    assert sorted(f["id"] for f in listed["items"]) == sorted(first_ids.values())
    assert listed["next_cursor"] is None
    for key, form_id in first_ids.items():
        shown = world.get("shop", f"/api/v1/forms/{form_id}").get_json()
        assert shown["items"] == tills.acknowledged[key]["items"]
    assert_intact(database_url)

    figures(sent=tills.sent, acknowledged=len(tills.acknowledged), retried=tills.retried,
            kills=len(KILL_AFTER), freezes=freezes, in_flight_at_kills=sum(in_flight_at_kill),
            answers_lost_at_kills=len(answers_lost), acknowledged_by_replay=len(tills.replayed_on_retry),
            lost=len(set(first_ids.values()) - set(stored)),
            duplicated=len(stored) - len(set(first_ids.values())),
            forms_without_lines=forms_without_lines, errors=len(tills.unexpected) + len(tills.gave_up),
            retried_without_answer=tills.no_answer, retried_after_5xx=sum(tills.server_errors.values()))


# --- the webhook worker killed mid-delivery --------------------------------------

class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request (webhook-id,
    headers, body) and answers 204 after ``delay`` seconds. ``hold_next()``
    keeps the next request unanswered until ``answer()``: a worker can be
    killed with that request in flight, or after its answer."""

    def __init__(self, delay: float):
        self.delay = delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.hold = threading.Event()
        self.held = threading.Event()          # set once a held request arrived
        self.held_id: str | None = None
        self.release = threading.Event()
        self.answered = threading.Event()      # set once the held request was answered
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append(
                        {"id": self.headers.get("webhook-id"), "headers": dict(self.headers), "body": body})
                    holding = receiver.hold.is_set()
                    if holding:
                        receiver.hold.clear()
                        receiver.held_id = self.headers.get("webhook-id")
                        receiver.held.set()
                if holding:
                    receiver.release.wait(60)
                else:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(204)
                    self.end_headers()
                    self.wfile.flush()
                except OSError:
                    pass  # the worker is gone
                finally:
                    if holding:
                        receiver.answered.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/taxfree"

    def hold_next(self) -> None:
        self.held.clear()
        self.release.clear()
        self.answered.clear()
        self.hold.set()

    def answer(self) -> None:
        self.release.set()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    with Receiver(delay=0.05) as r:
        yield r


def cancelled_forms(app, world, count: int) -> None:
    """Issue ``count`` forms of the shop and cancel them, in one transaction:
    ``count`` form.cancelled events in the outbox."""
    shop = Principal("user", "0", "retailer", retailer_id=world.ids["shop"])
    sessions = app.extensions["db_sessionmaker"]
    # The app context: passport numbers are encrypted with the app's keys.
    with app.app_context(), sessions() as session, session.begin():
        kid, key = app.extensions["keyring"].signing_key(session)
        issuer = forms.Issuer(app.config["RULESET"], app.config["PASSPORT_HASH_KEY"].encode(), kid, key)
        for n in range(count):
            now = utcnow()
            form = forms.issue(session, shop, FormCreate().load(form_body(invoice=f"WH-{n:04d}")), issuer, now)
            forms.cancel(session, shop, form, now)


def outbox(app) -> list[WebhookDelivery]:
    with app.extensions["db_sessionmaker"]() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def delivered_count(app) -> int:
    with app.extensions["db_sessionmaker"]() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.status == "delivered"))


# The worker gives up on a receiver after TIMEOUT s and holds a lease for
# LEASE s (more than two attempts); a killed worker's leases run out after it.
TIMEOUT_SECONDS = 2
LEASE_SECONDS = 11


def delivery_worker(app, world, database_url, tmp_path, receiver) -> tuple[dict, Restartable]:
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True   # the receiver listens on loopback
    r = world.post("shop", "/api/v1/webhooks", {"url": receiver.url(), "events": ["form.cancelled"]})
    assert r.status_code == 201, r.get_json()
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "worker"),
           "WEBHOOKS_ALLOW_PRIVATE": "true", "WEBHOOKS_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
           "WEBHOOKS_LEASE_SECONDS": str(LEASE_SECONDS), "WEBHOOKS_BATCH_SIZE": "5",
           "WEBHOOKS_POLL_SECONDS": "0.2"}
    command = [sys.executable, "-m", "flask", "--app", "api", "deliver-webhooks", "--forever"]
    return r.get_json(), Restartable(command, env, tmp_path / "worker.log")


def running(worker: Restartable) -> bool:
    assert worker.process.poll() is None, "the worker exited:\n" + worker.output()[-3000:]
    return True


def test_events_reach_the_receiver_though_the_delivery_worker_is_killed_mid_delivery(
        app, world, database_url, tmp_path, receiver, figures):
    events = 100
    hook, worker = delivery_worker(app, world, database_url, tmp_path, receiver)
    cancelled_forms(app, world, events)
    cut_off = []     # webhook-ids of requests the worker was killed in the middle of
    try:
        worker.start()

        # 1. Killed while the receiver has not answered yet.
        wait_until(lambda: running(worker) and receiver.count() >= 15, "the first deliveries")
        receiver.hold_next()
        wait_until(lambda: running(worker) and receiver.held.is_set(), "a request in flight")
        worker.kill()
        receiver.answer()
        cut_off.append(receiver.held_id)
        worker.start()

        # 2. Killed after the receiver's 2xx, before the worker recorded it:
        # stopped while waiting for the answer, answered, then killed.
        wait_until(lambda: running(worker) and receiver.count() >= 40, "more deliveries")
        receiver.hold_next()
        wait_until(lambda: running(worker) and receiver.held.is_set(), "a request in flight")
        worker.signal(signal.SIGSTOP)
        receiver.answer()
        assert receiver.answered.wait(30)
        worker.kill()
        cut_off.append(receiver.held_id)
        worker.start()

        # 3. Killed at whatever moment the 70th request arrives.
        wait_until(lambda: running(worker) and receiver.count() >= 70, "more deliveries", every=0.005)
        worker.kill()
        worker.start()

        # The killed workers' leases run out and their rows are sent again.
        wait_until(lambda: running(worker) and delivered_count(app) == events, "every event delivered",
                   every=0.2)
        # Idle, then told to stop: a clean exit.
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(60) == 0, worker.output()[-3000:]
    finally:
        worker.stop()

    rows = outbox(app)
    assert len(rows) == events
    assert {row.status for row in rows} == {"delivered"}
    assert all(row.lease_token is None for row in rows)
    received = defaultdict(list)
    for request in receiver.requests:
        received[request["id"]].append(request)
    # No event lost: each one arrived, signed, with the body the outbox holds;
    # a repeat carries the same webhook-id and the same bytes.
    assert sorted(received) == sorted(row.message_id for row in rows)
    for row in rows:
        for request in received[row.message_id]:
            assert request["body"] == row.payload.encode()
            event = SignatureCheck(hook["secret"]).verify(request["body"], request["headers"])
            assert event["type"] == "form.cancelled"
    kills = worker.starts - 1
    redelivered = sum(len(requests_) - 1 for requests_ in received.values())
    assert redelivered <= kills
    # The requests cut off were sent again once their lease ran out.
    assert all(len(received[message_id]) >= 2 for message_id in cut_off)
    assert_intact(database_url)
    figures(events=events, kills=kills, deliveries_received=len(receiver.requests),
            lost=events - len(received), redelivered_same_id=redelivered)


def test_a_delivery_worker_told_to_stop_finishes_its_request_gives_back_its_leases_and_exits_0(
        app, world, database_url, tmp_path, receiver, figures):
    events = 20
    hook, worker = delivery_worker(app, world, database_url, tmp_path, receiver)
    cancelled_forms(app, world, events)
    receiver.hold_next()   # the worker's first request
    try:
        worker.start()
        wait_until(lambda: running(worker) and receiver.held.is_set(), "a request in flight")
        worker.signal(signal.SIGTERM)
        time.sleep(0.3)  # the signal lands while the request waits for its answer
        receiver.answer()
        assert worker.process.wait(60) == 0, worker.output()[-3000:]
        stopped = outbox(app)
        sent_before_stop = receiver.count()

        # Nothing waits for a lease to run out: the next run sends the rest at once.
        worker.start()
        wait_until(lambda: running(worker) and delivered_count(app) == events, "every event delivered",
                   every=0.2)
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(60) == 0, worker.output()[-3000:]
    finally:
        worker.stop()

    assert "Stopped" in worker.output()
    # The request in flight was finished and recorded, no other was started,
    # and the rest of the leased batch was given back.
    assert sent_before_stop == 1
    assert [row.message_id for row in stopped if row.status == "delivered"] == [receiver.held_id]
    assert [row.status for row in stopped].count("pending") == events - 1
    assert all(row.lease_token is None and row.leased_until is None for row in stopped)
    rows = outbox(app)
    assert {row.status for row in rows} == {"delivered"}
    counts = Counter(request["id"] for request in receiver.requests)
    assert counts == Counter({row.message_id: 1 for row in rows})   # each exactly once
    for request in receiver.requests:
        SignatureCheck(hook["secret"]).verify(request["body"], request["headers"])
    figures(events=events, sigterms=2, delivered_before_stop=1, leased_left_at_stop=0,
            lost=events - len(counts), redelivered=sum(counts.values()) - len(counts))
