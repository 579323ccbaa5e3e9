"""Webhooks: retailers and intermediaries hear of every status change of
their forms, signed (Standard Webhooks), at least once, retried on a
schedule, from a transactional outbox that several workers drain together.

A real HTTP receiver runs on 127.0.0.1 in a thread; the worker runs with an
injected clock, so retries three days apart take no time."""
from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import create_engine, func, select, text
from standardwebhooks import Webhook as SignatureCheck

from sqlalchemy.orm import sessionmaker

from api import database, pagination
from api.auth import Principal
from api.database import make_engine
from api.models import Event, Form, WebhookAttempt, WebhookDelivery, utcnow
from api.services import audit, deliveries, forms, webhooks
from shared import rules
from tests.builders import form_body, item, scan_at, statements_of

ALL_EVENTS = list(webhooks.EVENT_TYPES)


# --- a receiver on 127.0.0.1 --------------------------------------------------

class Receiver:
    """An HTTP server in a thread that records every request and answers as
    ``script(message_id, attempt)`` says: an int status, ("redirect", url)
    or "slow" (no answer until released, beyond the worker's timeout)."""

    def __init__(self, script=None):
        self.script = script or (lambda message_id, attempt: 200)
        self.requests: list[dict] = []
        self.in_flight: Counter = Counter()
        self.overlaps: list[str] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message_id = self.headers.get("webhook-id")
                with receiver.lock:
                    if receiver.in_flight[message_id]:
                        receiver.overlaps.append(message_id)
                    receiver.in_flight[message_id] += 1
                    attempt = sum(1 for r in receiver.requests if r["id"] == message_id) + 1
                    receiver.requests.append({
                        "path": self.path, "id": message_id, "headers": dict(self.headers),
                        "body": body, "attempt": attempt,
                    })
                try:
                    action = receiver.script(message_id, attempt)
                    if action == "slow":
                        receiver.release.wait(10)
                        action = 200
                    if isinstance(action, tuple):
                        self.send_response(302)
                        self.send_header("Location", action[1])
                    else:
                        self.send_response(action)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker gave up waiting
                finally:
                    with receiver.lock:
                        receiver.in_flight[message_id] -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path="/hooks") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def to(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

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
    with Receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def private_receivers_allowed(request):
    # The receiver listens on loopback; production refuses such URLs.
    if "app" in request.fixturenames:
        request.getfixturevalue("app").config["WEBHOOKS_ALLOW_PRIVATE"] = True


class Clock:
    """The worker's clock, moved by the test."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


SETTINGS = deliveries.Settings(timeout_seconds=0.5, allow_private=True)


def run_worker(app, clock, settings=SETTINGS, **kw) -> deliveries.Report:
    return deliveries.deliver_due(app.extensions["db_sessionmaker"], settings, clock=clock,
                                  rand=lambda: 0.5, **kw)


def register(world, who, url, events=ALL_EVENTS) -> dict:
    r = world.post(who, "/api/v1/webhooks", {"url": url, "events": events})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def deliveries_of(world, who, webhook_id, query="") -> list[dict]:
    r = world.get(who, f"/api/v1/webhooks/{webhook_id}/deliveries{query}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def verified(secret: str, request: dict) -> dict:
    """The event, if the signature checks out with the webhook's secret."""
    return SignatureCheck(secret).verify(request["body"], request["headers"])


def problem(r, status, code):
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == code
    return r.get_json()


# --- registration and ownership -----------------------------------------------

def test_a_webhook_is_registered_with_a_secret_shown_only_once(world, receiver):
    hook = register(world, "refunds", receiver.url(), ["form.validated", "form.refunded"])

    assert set(hook) == {"id", "url", "events", "created_at", "secret"}
    assert hook["id"].startswith("wh_")
    assert (hook["url"], hook["events"]) == (receiver.url(), ["form.validated", "form.refunded"])
    assert hook["secret"].startswith("whsec_")
    assert len(base64.b64decode(hook["secret"][len("whsec_"):])) == 32
    shown = world.get("refunds", f"/api/v1/webhooks/{hook['id']}").get_json()
    assert shown == {k: v for k, v in hook.items() if k != "secret"}
    listed = world.get("refunds", "/api/v1/webhooks").get_json()
    assert listed == {"items": [shown], "next_cursor": None}


def test_a_webhook_is_seen_only_by_its_owner(world, receiver):
    hook = register(world, "refunds", receiver.url())
    mine = register(world, "shop", receiver.url())

    for who in ("other", "books", "shop"):
        if who == "shop":
            assert [h["id"] for h in world.get(who, "/api/v1/webhooks").get_json()["items"]] == [mine["id"]]
            continue
        assert world.get(who, "/api/v1/webhooks").get_json()["items"] == []
        problem(world.get(who, f"/api/v1/webhooks/{hook['id']}"), 404, "webhook_not_found")
        problem(world.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=world.auth(who)),
                404, "webhook_not_found")
        problem(world.get(who, f"/api/v1/webhooks/{hook['id']}/deliveries"), 404, "webhook_not_found")
        problem(world.post(who, f"/api/v1/webhooks/{hook['id']}/deliveries/1/retry"), 404, "webhook_not_found")
    problem(world.get("shop", f"/api/v1/webhooks/{hook['id']}"), 404, "webhook_not_found")
    for who in ("officer", "root", "kiosk"):
        problem(world.post(who, "/api/v1/webhooks", {"url": receiver.url(), "events": ALL_EVENTS}),
                403, "forbidden")
    problem(world.client.get("/api/v1/webhooks"), 401, "unauthorized")


PRIVATE_HOSTS = [
    "127.0.0.1:8080", "localhost", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254",
    "100.64.0.1", "[::1]", "[::ffff:127.0.0.1]", "[fd00::1]", "0.0.0.0", "[fe80::1]", "[::]",
]
# IPv6 addresses that carry a private, loopback or link-local IPv4 address:
# a NAT64 gateway, a 6to4 relay, a Teredo relay or the host's own stack
# connects them to that IPv4 address.
EMBEDDING_HOSTS = [
    "[64:ff9b::7f00:1]",          # NAT64, well-known prefix: 127.0.0.1
    "[64:ff9b::a01:203]",         # NAT64: 10.1.2.3
    "[64:ff9b::a9fe:a9fe]",       # NAT64: 169.254.169.254 (cloud metadata)
    "[64:ff9b:1::a01:203]",       # NAT64, local-use prefix
    "[::127.0.0.1]",              # IPv4-compatible
    "[::10.1.2.3]",               # IPv4-compatible
    "[::ffff:10.1.2.3]",          # IPv4-mapped
    "[::ffff:0:7f00:1]",          # IPv4-translated: 127.0.0.1
    "[2002:7f00:1::1]",           # 6to4: 127.0.0.1
    "[2002:c0a8:a::1]",           # 6to4: 192.168.0.10
    "[2002:a9fe:a9fe::1]",        # 6to4: 169.254.169.254
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
    "[2001:0:a01:203:8000:63bf:f5fe:fdfe]",     # Teredo, server 10.1.2.3
]


@pytest.mark.parametrize("host", PRIVATE_HOSTS + EMBEDDING_HOSTS)
def test_a_webhook_to_a_private_or_loopback_address_is_refused(app, world, host):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    body = problem(world.post("refunds", "/api/v1/webhooks", {"url": f"https://{host}/hooks", "events": ALL_EVENTS}),
                   422, "invalid_webhook_url")
    assert "private or loopback" in body["errors"]["url"][0]


@pytest.mark.parametrize("host", [
    "93.184.215.14", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]",
    "[64:ff9b::5db8:d70e]", "[2002:5db8:d70e::1]", "[::ffff:93.184.215.14]",  # carrying 93.184.215.14
])
def test_a_webhook_to_a_public_address_is_accepted(app, world, host):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    hook = register(world, "refunds", f"https://{host}/taxfree", ["form.validated"])
    assert hook["url"] == f"https://{host}/taxfree"


def test_a_webhook_over_plain_http_is_refused_in_production(app, world):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    body = problem(world.post("refunds", "/api/v1/webhooks",
                              {"url": "http://93.184.215.14/taxfree", "events": ALL_EVENTS}),
                   422, "invalid_webhook_url")
    assert body["errors"]["url"] == ["Give an https:// URL: events are only sent encrypted."]


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://93.184.215.14/x", "events": ["form.validated"]}, "url"),
    ({"url": "file:///etc/passwd", "events": ["form.validated"]}, "url"),
    ({"url": "https://user:pw@93.184.215.14/x", "events": ["form.validated"]}, "url"),
    ({"url": "/relative", "events": ["form.validated"]}, "url"),
    ({"url": "https://93.184.215.14/x", "events": []}, "events"),
    ({"url": "https://93.184.215.14/x", "events": ["form.issued"]}, "events.0"),
    ({"url": "https://93.184.215.14/x"}, "events"),
])
def test_a_webhook_needs_an_http_url_and_known_events(world, body, field):
    r = world.post("refunds", "/api/v1/webhooks", body)
    assert r.status_code == 422, r.get_json()
    assert list(r.get_json()["errors"]) == [field]


def test_an_owner_has_at_most_the_configured_number_of_webhooks(app, world, receiver):
    app.config["WEBHOOKS_MAX_PER_OWNER"] = 2
    first = register(world, "refunds", receiver.url())
    register(world, "refunds", receiver.url())
    problem(world.post("refunds", "/api/v1/webhooks", {"url": receiver.url(), "events": ALL_EVENTS}),
            409, "too_many_webhooks")
    assert world.client.delete(f"/api/v1/webhooks/{first['id']}", headers=world.auth("refunds")).status_code == 204
    register(world, "refunds", receiver.url())


# --- events, end to end -----------------------------------------------------------

def _overdue_form(app, world) -> str:
    """A form issued four months ago, never taken out; the nightly expiry
    then expires it."""
    with app.app_context():
        session = database.session()
        kid, key = app.extensions["keyring"].signing_key(session)
        issuer = forms.Issuer(app.config["RULESET"], app.config["PASSPORT_HASH_KEY"].encode(), kid, key)
        shop = Principal("user", "0", "retailer", retailer_id=world.ids["shop"])
        then = utcnow() - timedelta(days=130)
        body = form_body(invoice="INV-OLD", purchase_date=then.date())
        body["traveller"]["date_of_birth"] = date(1988, 3, 14)
        body["purchase_date"] = then.date()
        body["items"] = [{**item(), "vat_rate_bp": 2100}]
        form = forms.issue(session, shop, body, issuer, then)
        session.commit()
        assert forms.expire_overdue(session, app.config["RULESET"], utcnow(), grace=timedelta(0)) == [form.id]
        session.commit()
        return form.id


def test_every_status_change_reaches_the_retailer_and_its_intermediary_signed(app, world, receiver):
    to_shop = register(world, "shop", receiver.url("/shop"))
    to_refunds = register(world, "refunds", receiver.url("/refunds"))
    register(world, "books", receiver.url("/books"))   # another retailer
    register(world, "other", receiver.url("/other"))   # another intermediary
    pay = {"amount_cents": 1, "paid_at": "2026-12-01T10:00:00+00:00"}

    validated = world.issue("shop")
    world.scan("kiosk", validated["qr_payload"])
    refunded = world.issue("shop")
    world.scan("kiosk", refunded["qr_payload"])
    assert world.post("refunds", f"/api/v1/forms/{refunded['id']}/refund", pay).status_code == 200
    partial = world.issue("shop", item(60500, category="watches"), item(12100))
    world.scan("rtm-kiosk", partial["qr_payload"])
    world.sign_on("officer2", "RTM")
    r = world.post("officer2", f"/api/v1/forms/{partial['id']}/decision", {
        "outcome": "partially_validated", "lines": [{"line": 1, "present": True}, {"line": 2, "present": False}]})
    assert r.status_code == 200, r.get_json()
    rejected = world.issue("shop", item(60500, category="watches"))
    world.scan("kiosk", rejected["qr_payload"])
    r = world.post("officer", f"/api/v1/forms/{rejected['id']}/decision",
                   {"outcome": "rejected", "reason_code": "goods_not_presented"})
    assert r.status_code == 200, r.get_json()
    cancelled = world.issue("refunds", retailer_vat="NL859559001B01")
    assert world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel").status_code == 200
    expired = {"id": _overdue_form(app, world)}
    world.issue("books")  # issuing is no webhook event; and not theirs anyway

    report = run_worker(app, Clock(utcnow()))

    expected = sorted([
        ("form.validated", validated["id"], "validated"),
        ("form.validated", refunded["id"], "validated"),
        ("form.refunded", refunded["id"], "refunded"),
        ("form.check_required", partial["id"], "check_required"),
        ("form.partially_validated", partial["id"], "partially_validated"),
        ("form.check_required", rejected["id"], "check_required"),
        ("form.rejected", rejected["id"], "rejected"),
        ("form.cancelled", cancelled["id"], "cancelled"),
        ("form.expired", expired["id"], "expired"),
    ])
    assert (report.delivered, report.retrying, report.failed) == (18, 0, 0)
    assert receiver.to("/books") == [] and receiver.to("/other") == []
    for path, hook in (("/shop", to_shop), ("/refunds", to_refunds)):
        events = [verified(hook["secret"], request) for request in receiver.to(path)]
        assert sorted((e["type"], e["data"]["form_id"], e["data"]["status"]) for e in events) == expected
    # One event, one webhook-id, whoever receives it.
    assert Counter(r["id"] for r in receiver.requests) == Counter({r["id"]: 2 for r in receiver.requests})

    [event] = [verified(to_refunds["secret"], r) for r in receiver.to("/refunds")
               if json.loads(r["body"])["type"] == "form.partially_validated"]
    data = event["data"]
    assert (data["exit_point"], data["retailer_vat"], data["total_cents"]) == ("RTM", "NL859559001B01", 72600)
    assert (data["validated_total_cents"], data["validated_vat_cents"]) == (60500, 10500)
    assert [(l["line"], l["validated"]) for l in data["lines"]] == [(1, True), (2, False)]
    assert "traveller" not in data and "Chen" not in json.dumps(event)
    [event] = [verified(to_shop["secret"], r) for r in receiver.to("/shop")
               if json.loads(r["body"])["type"] == "form.rejected"]
    assert (event["data"]["reason_code"], [l["validated"] for l in event["data"]["lines"]]) == (
        "goods_not_presented", [False])
    [event] = [verified(to_shop["secret"], r) for r in receiver.to("/shop")
               if json.loads(r["body"])["type"] == "form.refunded"]
    assert (event["data"]["refunded_cents"], event["data"]["refunded_at"]) == (1, "2026-12-01T10:00:00+00:00")
    statuses = {d["status"] for d in deliveries_of(world, "shop", to_shop["id"])}
    assert statuses == {"delivered"}


def test_a_form_without_webhooks_writes_no_deliveries(app, world):
    form = world.issue("books")
    world.scan("kiosk", form["qr_payload"])
    with app.app_context():
        assert database.session().scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_only_the_event_types_a_webhook_asked_for_are_sent(app, world, receiver):
    register(world, "refunds", receiver.url(), ["form.cancelled"])
    validated = world.issue("shop")
    world.scan("kiosk", validated["qr_payload"])
    cancelled = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel")

    run_worker(app, Clock(utcnow()))

    assert [(json.loads(r["body"])["type"], json.loads(r["body"])["data"]["form_id"])
            for r in receiver.requests] == [("form.cancelled", cancelled["id"])]


def test_a_rolled_back_status_change_writes_nothing_to_the_outbox(app, world, receiver):
    register(world, "refunds", receiver.url())
    form = world.issue("shop")
    shop = Principal("user", "0", "retailer", retailer_id=world.ids["shop"])

    with app.app_context():
        session = database.session()
        changed = forms.cancel(session, shop, session.get(Form, form["id"]), utcnow())
        assert changed.status == "cancelled"
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1  # written ...
        session.rollback()                                                              # ... and gone
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert session.scalar(select(func.count()).select_from(Event).where(Event.type == "form.cancelled")) == 0

    # A refused change (409) leaves nothing either.
    r = world.post("refunds", f"/api/v1/forms/{form['id']}/refund",
                   {"amount_cents": 1, "paid_at": "2026-12-01T10:00:00+00:00"})
    problem(r, 409, "form_not_refundable")
    assert run_worker(app, Clock(utcnow())).attempts == 0
    assert receiver.requests == []

    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    assert run_worker(app, Clock(utcnow())).delivered == 1
    assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["form.cancelled"]


@pytest.mark.parametrize("verdict", ["validated", "check_required", "expired"])
def test_a_scan_reads_who_listens_before_its_write_and_tells_them_what_a_read_after_it_would(
        app, world, receiver, verdict):
    # The listeners are read before the form's compare-and-set, which takes
    # the counters every writer waits for: nothing reads them after it, and
    # on PostgreSQL nothing writes the outbox after it either.
    register(world, "refunds", receiver.url())
    form = world.issue("shop", *([item(60500, category="watches")] if verdict == "check_required" else []))
    if verdict == "expired":
        end = rules.deadline_end_utc(date.fromisoformat(form["export_deadline"]), "Europe/Amsterdam")
        sent = statements_of(app, lambda: scan_at(app, world, "kiosk", form["qr_payload"], end))
    else:
        sent = statements_of(app, lambda: world.scan("kiosk", form["qr_payload"]))

    reads = [i for i, statement in enumerate(sent) if "webhooks.events" in statement]
    [write] = [i for i, statement in enumerate(sent) if "UPDATE forms SET status" in statement]
    assert len(reads) == 1 and reads[0] < write
    if app.extensions["db_engine"].dialect.name == "postgresql":
        # The outbox row goes in the verdict's own statement.
        assert "INSERT INTO webhook_deliveries" in sent[write]
        assert not [statement for statement in sent[write + 1:] if "webhook" in statement], sent[write:]

    # The outbox row says what a read of the form after the write says now
    # (enqueue reads it itself when nothing was read before).
    with app.app_context():
        session = database.session()
        [delivery] = session.scalars(select(WebhookDelivery).join(Event, Event.id == WebhookDelivery.event_id)
                                     .where(Event.form_id == form["id"])).all()
        made = session.get(Event, delivery.event_id)
        assert made.type == f"form.{verdict}"
        assert webhooks.enqueue(session, audit.Written(made.id, made.form_id, made.type, made.actor,
                                                       made.exit_point, made.data, made.at)) == 1
        [read_after] = session.scalars(select(WebhookDelivery.payload).where(
            WebhookDelivery.event_id == made.id, WebhookDelivery.id != delivery.id)).all()
        written = delivery.payload
        session.rollback()
    assert json.loads(written) == json.loads(read_after)
    assert json.loads(read_after)["data"]["status"] == verdict


def test_a_scan_whose_compare_and_set_loses_writes_no_outbox_row(app, world, receiver, monkeypatch):
    """On PostgreSQL the outbox row goes in the verdict's statement; when
    another request changed the form between the scan's read and its write,
    that statement writes nothing, the outbox row neither, and the scan
    gives the verdict the form has now."""
    register(world, "refunds", receiver.url())
    form = world.issue("shop")
    engine = app.extensions["db_engine"]
    postgresql = engine.dialect.name == "postgresql"
    read = webhooks.read_before_write

    def read_then_another_device_validates(session, *args):
        read(session, *args)
        if postgresql:
            with engine.begin() as other:
                other.execute(text(
                    "UPDATE forms SET status = 'validated', validated_at = now(), "
                    "exit_point_id = (SELECT id FROM exit_points WHERE code = 'AMS') WHERE id = :id"),
                    {"id": form["id"]})

    monkeypatch.setattr(webhooks, "read_before_write", read_then_another_device_validates)
    r = world.scan("kiosk", form["qr_payload"])

    assert r.status_code == 200 and r.get_json()["verdict"] == "validated", r.get_json()
    with app.app_context():
        session = database.session()
        made = session.scalars(select(Event.type).where(Event.form_id == form["id"]).order_by(Event.id)).all()
        outbox = session.scalar(select(func.count()).select_from(WebhookDelivery))
    # SQLite: no other request in between, the usual validation.
    assert (made, outbox) == ((["form.issued", "form.scanned"], 0) if postgresql
                              else (["form.issued", "form.validated", "form.scanned"], 1))


# --- failures, retries, the schedule ------------------------------------------------

def _next_due(app) -> datetime | None:
    with app.app_context():
        return database.session().scalar(
            select(func.max(WebhookDelivery.next_attempt_at)).where(WebhookDelivery.status == "pending"))


def test_a_failing_receiver_gets_every_event_under_one_id_in_the_end(app, world):
    def script(message_id, attempt):
        # 500, then a redirect (never followed), then no answer in time, then 200.
        return {1: 500, 2: ("redirect", receiver.url("/elsewhere")), 3: "slow"}.get(attempt, 200)

    with Receiver(script) as receiver:
        hook = register(world, "refunds", receiver.url())
        ids = []
        for _ in range(3):
            form = world.issue("shop")
            world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
            ids.append(form["id"])
        clock = Clock(utcnow())
        started = time.monotonic()
        reports = []
        for _round in range(6):
            reports.append(run_worker(app, clock))
            due = _next_due(app)
            if due is None:
                break
            clock.now = due  # the worker's next run, when the retries are due
        elapsed = time.monotonic() - started

    assert [(r.delivered, r.retrying) for r in reports] == [(0, 3), (0, 3), (0, 3), (3, 0)]
    assert receiver.to("/elsewhere") == []
    requests = receiver.to("/hooks")
    assert len(requests) == 12
    by_id = defaultdict(list)
    for request in requests:
        by_id[request["id"]].append(request)
    assert len(by_id) == 3
    for message_id, attempts in by_id.items():
        assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
        assert len({a["body"] for a in attempts}) == 1          # the same bytes every time
        for a in attempts:  # each attempt signed anew, each signature valid
            assert verified(hook["secret"], a)["data"]["form_id"]
        stamps = [int(a["headers"]["webhook-timestamp"]) for a in attempts]
        assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert sorted(e["data"]["form_id"] for e in
                  (json.loads(attempts[0]["body"]) for attempts in by_id.values())) == sorted(ids)
    listed = deliveries_of(world, "refunds", hook["id"])
    assert [d["status"] for d in listed] == ["delivered"] * 3
    for d in listed:
        assert d["attempt_count"] == 4 and d["message_id"] in by_id
        assert [a["status_code"] for a in d["attempts"]] == [500, 302, None, 200]
        errors = [a["error"] for a in d["attempts"]]
        assert errors[0] == "the receiver answered 500"
        assert errors[1] == f"redirect to {receiver.url('/elsewhere')} not followed"
        assert errors[2] == "no answer within 0.5 s"
        assert errors[3] is None
    assert elapsed < 20


class Unavailable:
    """A response: 503 Service Unavailable."""

    status_code, is_redirect, headers = 503, False, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class AlwaysUnavailable:
    """An HTTP client whose receiver always answers 503."""

    def __init__(self):
        self.calls = 0

    def post(self, url, **kw):
        self.calls += 1
        return Unavailable()


def test_retries_back_off_exponentially_for_three_days_then_the_delivery_fails(app, world):
    hook = register(world, "refunds", "http://127.0.0.1:9/never")
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    with app.app_context():
        start = database.session().scalar(select(WebhookDelivery.created_at))
    clock = Clock(start)
    http = AlwaysUnavailable()
    offsets = []
    for _ in range(20):
        offsets.append((clock.now - start).total_seconds())
        report = run_worker(app, clock, http=http)
        assert report.attempts == 1
        due = _next_due(app)
        if due is None:
            break
        clock.now = due

    # 5 s, then four times longer each time, at most 12 h apart, the last
    # attempt when the three days are up.
    assert offsets == [0, 5, 25, 105, 425, 1705, 6825, 27305, 70505, 113705, 156905, 200105,
                       243305, 259200]
    [delivery] = deliveries_of(world, "refunds", hook["id"])
    assert (delivery["status"], delivery["attempt_count"], delivery["next_attempt_at"]) == ("failed", 14, None)
    assert {a["status_code"] for a in delivery["attempts"]} == {503}
    assert run_worker(app, Clock(start + timedelta(days=30)), http=http).attempts == 0
    assert http.calls == 14


def test_each_wait_is_jittered_by_up_to_a_fifth():
    assert deliveries.backoff(1, 0.5) == timedelta(seconds=5)
    assert deliveries.backoff(1, 0.0) == timedelta(seconds=4)
    assert deliveries.backoff(2, 1.0) == timedelta(seconds=24)
    assert deliveries.backoff(3, 0.25) == timedelta(seconds=72)
    assert deliveries.backoff(40, 0.5) == timedelta(hours=12)
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    closes = start + timedelta(days=3)
    assert deliveries.next_attempt(9, start, closes - timedelta(hours=1), timedelta(days=3), 0.5) == closes
    assert deliveries.next_attempt(10, start, closes, timedelta(days=3), 0.5) is None


def test_a_failed_delivery_retried_by_hand_gets_a_fresh_window(app, world, receiver):
    hook = register(world, "refunds", receiver.url())
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    with app.app_context():
        start = database.session().scalar(select(WebhookDelivery.created_at))
    run_worker(app, Clock(start + timedelta(days=3)), http=AlwaysUnavailable())
    [failed] = deliveries_of(world, "refunds", hook["id"])
    assert failed["status"] == "failed"

    r = world.post("refunds", f"/api/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/retry")

    assert r.status_code == 202, r.get_json()
    assert (r.get_json()["status"], r.get_json()["id"]) == ("pending", failed["id"])
    assert run_worker(app, Clock(utcnow())).delivered == 1
    [request] = receiver.requests
    assert request["id"] == failed["message_id"]
    verified(hook["secret"], request)
    problem(world.post("refunds", f"/api/v1/webhooks/{hook['id']}/deliveries/999999/retry"),
            404, "delivery_not_found")


def test_a_delivered_event_replayed_by_hand_keeps_its_webhook_id(app, world, receiver):
    hook = register(world, "refunds", receiver.url())
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    run_worker(app, Clock(utcnow()))
    [delivery] = deliveries_of(world, "refunds", hook["id"])

    r = world.post("refunds", f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry")
    assert r.status_code == 202
    run_worker(app, Clock(utcnow()))

    assert [req["id"] for req in receiver.requests] == [delivery["message_id"]] * 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    [again] = deliveries_of(world, "refunds", hook["id"])
    assert (again["status"], again["attempt_count"]) == ("delivered", 2)


def test_a_worker_killed_mid_delivery_leaves_a_lease_that_runs_out(app, world, receiver):
    hook = register(world, "refunds", receiver.url())
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    clock = Clock(utcnow())

    # A worker claims the delivery and dies before sending or recording.
    [claimed] = deliveries.claim(app.extensions["db_sessionmaker"], SETTINGS, clock())
    assert run_worker(app, clock).attempts == 0      # still leased: nobody else sends it
    clock.now += timedelta(seconds=SETTINGS.lease_seconds - 1)
    assert run_worker(app, clock).attempts == 0
    clock.now += timedelta(seconds=1)                # the lease has run out
    assert run_worker(app, clock).delivered == 1

    assert [r["id"] for r in receiver.requests] == [claimed.message_id]
    [delivery] = deliveries_of(world, "refunds", hook["id"])
    assert (delivery["status"], delivery["attempt_count"]) == ("delivered", 1)


def test_a_late_result_of_a_worker_whose_lease_ran_out_changes_nothing(app, world, receiver):
    register(world, "refunds", receiver.url())
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    sessions = app.extensions["db_sessionmaker"]
    clock = Clock(utcnow())
    [stale] = deliveries.claim(sessions, SETTINGS, clock())
    clock.now += timedelta(seconds=SETTINGS.lease_seconds)
    assert run_worker(app, clock).delivered == 1
    late = deliveries.Outcome(clock(), 500, "the receiver answered 500", 3)

    assert deliveries.record(sessions, stale, late, SETTINGS, clock(), 0.5) == "pending"

    with app.app_context():
        session = database.session()
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.status, delivery.attempt_count) == ("delivered", 1)
        assert session.scalar(select(func.count()).select_from(WebhookAttempt)) == 2  # both kept


def test_a_worker_sends_nothing_it_could_not_finish_before_its_lease_ends(app, world, receiver):
    register(world, "refunds", receiver.url())
    for _ in range(2):
        form = world.issue("shop")
        world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    clock = Clock(utcnow())
    settings = deliveries.Settings(timeout_seconds=0.5, allow_private=True, lease_seconds=10)

    class SlowClock(Clock):
        # Each reading is 4 s later: the second delivery would end past the lease.
        def __call__(self):
            self.now += timedelta(seconds=4)
            return self.now

    report = deliveries.deliver_due(app.extensions["db_sessionmaker"], settings, clock=SlowClock(clock.now),
                                    rand=lambda: 0.5)
    assert (report.delivered, report.released) == (2, 1)  # released, then claimed again and sent
    assert len(receiver.requests) == 2


def test_delivery_to_a_private_address_is_refused_when_it_is_made(app, world, receiver):
    # Registered while allowed (or the name resolved elsewhere then): the
    # worker checks the address it actually connects to.
    hook = register(world, "refunds", receiver.url().replace("http://", "https://"))
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")

    report = run_worker(app, Clock(utcnow()), deliveries.Settings(timeout_seconds=0.5, allow_private=False))

    assert (report.delivered, report.retrying) == (0, 1)
    assert receiver.requests == []
    [delivery] = deliveries_of(world, "refunds", hook["id"])
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"] == "refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"


@pytest.mark.parametrize("host", [h for h in EMBEDDING_HOSTS if h != "[::ffff:10.1.2.3]"] + [
    "[::ffff:127.0.0.1]"])
def test_delivery_to_an_ipv6_address_carrying_a_private_ipv4_one_is_refused_before_connecting(app, world, host):
    # Registered while allowed: the worker judges the address before it
    # connects, so an unroutable address says "refused", not "could not connect".
    hook = register(world, "refunds", f"https://{host}:8443/hooks")
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")

    run_worker(app, Clock(utcnow()), deliveries.Settings(timeout_seconds=0.5, allow_private=False))

    [delivery] = deliveries_of(world, "refunds", hook["id"])
    [attempt] = delivery["attempts"]
    assert attempt["error"].startswith("refused: ") and attempt["error"].endswith("which is not a public address")


def test_a_private_receiver_sees_not_even_a_tcp_handshake(app, world):
    # Whether the handshake succeeded would tell the webhook's owner which
    # internal ports are open (through the attempt's error).
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        port = listener.getsockname()[1]
        hook = register(world, "refunds", f"https://127.0.0.1:{port}/hooks")
        form = world.issue("shop")
        world.post("shop", f"/api/v1/forms/{form['id']}/cancel")

        run_worker(app, Clock(utcnow()), deliveries.Settings(timeout_seconds=0.5, allow_private=False))

        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):  # no connection is waiting to be accepted
            listener.accept()[0].close()
    [delivery] = deliveries_of(world, "refunds", hook["id"])
    assert delivery["attempts"][0]["error"] == \
        "refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"


def test_a_webhook_registered_over_plain_http_is_not_sent_to_in_production(app, world, receiver):
    hook = register(world, "refunds", receiver.url())  # allowed at registration (development)
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")

    run_worker(app, Clock(utcnow()), deliveries.Settings(timeout_seconds=0.5, allow_private=False))

    assert receiver.requests == []
    [delivery] = deliveries_of(world, "refunds", hook["id"])
    assert delivery["attempts"][0]["error"] == "refused: plain http; events are only sent over https"


def test_webhook_secrets_are_stored_encrypted_and_still_sign(app, world, receiver, database_url):
    hook = register(world, "refunds", receiver.url())
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        [stored] = conn.execute(text("SELECT secret FROM webhooks")).scalars().all()
    engine.dispose()

    assert hook["secret"] not in stored and hook["secret"].removeprefix("whsec_") not in stored
    assert run_worker(app, Clock(utcnow())).delivered == 1
    assert verified(hook["secret"], receiver.requests[0])["data"]["form_id"] == form["id"]


def test_a_receiver_that_is_down_is_retried(app, world):
    with Receiver() as gone:
        url = gone.url()
    hook = register(world, "refunds", url)
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")

    assert run_worker(app, Clock(utcnow())).retrying == 1

    [delivery] = deliveries_of(world, "refunds", hook["id"])
    assert delivery["status"] == "pending"
    assert delivery["attempts"][0]["error"].startswith("could not connect: ")


def test_deleting_a_webhook_cancels_its_pending_deliveries(app, world, receiver):
    hook = register(world, "refunds", receiver.url())
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")

    r = world.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=world.auth("refunds"))

    assert r.status_code == 204
    problem(world.get("refunds", f"/api/v1/webhooks/{hook['id']}"), 404, "webhook_not_found")
    assert world.get("refunds", "/api/v1/webhooks").get_json()["items"] == []
    assert run_worker(app, Clock(utcnow())).attempts == 0
    assert receiver.requests == []
    with app.app_context():
        assert database.session().scalars(select(WebhookDelivery.status)).all() == ["cancelled"]


def test_deliveries_are_listed_newest_first_a_page_at_a_time(app, world, receiver):
    hook = register(world, "refunds", receiver.url())
    ids = []
    for _ in range(5):
        form = world.issue("shop")
        world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
        ids.append(form["id"])
    run_worker(app, Clock(utcnow()))

    seen, cursor = [], None
    for _page in range(5):
        page = world.get("refunds", f"/api/v1/webhooks/{hook['id']}/deliveries",
                         query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}).get_json()
        assert set(page) == {"items", "next_cursor"}
        seen += [d["payload"]["data"]["form_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert deliveries_of(world, "refunds", hook["id"], "?status=pending") == []
    for cursor in ("nonsense", pagination.encode(2**70), pagination.encode("1")):
        problem(world.get("refunds", f"/api/v1/webhooks/{hook['id']}/deliveries",
                          query_string={"cursor": cursor}), 400, "invalid_cursor")
    for cursor in (pagination.encode(7), pagination.encode({"id": 1}), pagination.encode("wh_unknown")):
        problem(world.get("refunds", "/api/v1/webhooks", query_string={"cursor": cursor}), 400, "invalid_cursor")
    problem(world.post("refunds", f"/api/v1/webhooks/{hook['id']}/deliveries/{2**70}/retry"),
            404, "delivery_not_found")


def test_the_deliver_webhooks_command_sends_what_is_due(app, world, receiver, runner):
    register(world, "refunds", receiver.url())
    form = world.issue("shop")
    world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    app.config["WEBHOOKS_TIMEOUT_SECONDS"] = 1

    result = runner.invoke(args=["deliver-webhooks"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "1 delivery attempt(s): 1 delivered, 0 to retry, 0 failed for good.\n"
    assert len(receiver.requests) == 1
    assert runner.invoke(args=["deliver-webhooks"]).stdout.startswith("0 delivery attempt(s)")


def test_the_worker_keeps_delivering_until_stopped(app, world, receiver):
    register(world, "refunds", receiver.url())
    stop = threading.Event()
    reports = []

    def on_report(report):
        reports.append(report)
        stop.set()

    worker = threading.Thread(target=deliveries.run_forever, args=(
        app.extensions["db_sessionmaker"], SETTINGS, 0.05, stop, on_report))
    worker.start()
    try:
        form = world.issue("shop")
        world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
        worker.join(20)
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()
    assert [r.delivered for r in reports] == [1]
    assert len(receiver.requests) == 1


# --- two workers, a burst ------------------------------------------------------------------

def test_two_workers_deliver_a_burst_of_1000_events_each_exactly_once(app, world, receiver, database_url):
    hook = register(world, "refunds", receiver.url())
    form = world.issue("shop")
    with app.app_context():
        session = database.session()
        now = utcnow()
        for n in range(1000):
            audit.record(session, form["id"], "form.validated", "system", at=now, n=n)
        session.commit()
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1000

    engines = [make_engine(database_url) for _ in range(2)]
    start = threading.Barrier(2, timeout=30)
    reports = [None, None]
    errors = []

    def worker(n):
        try:
            start.wait()
            # The app's session settings (its keys), each worker its own engine.
            sessions = sessionmaker(engines[n], expire_on_commit=False,
                                    info=app.extensions["db_sessionmaker"].kw["info"])
            reports[n] = deliveries.deliver_due(sessions, SETTINGS)
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    for engine in engines:
        engine.dispose()

    assert errors == []
    assert not any(t.is_alive() for t in threads)
    assert receiver.overlaps == []
    counts = Counter(r["id"] for r in receiver.requests)
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert sum(r.delivered for r in reports) == 1000
    assert all(r.delivered > 0 for r in reports), [r.delivered for r in reports]
    assert set(reports[0].message_ids).isdisjoint(reports[1].message_ids)
    with app.app_context():
        assert database.session().scalars(
            select(WebhookDelivery.status).distinct()).all() == ["delivered"]
    sample = receiver.requests[0]
    assert verified(hook["secret"], sample)["type"] == "form.validated"
    assert elapsed < 90


# --- the signature scheme ---------------------------------------------------------------------

def test_signatures_match_the_specifications_test_vector():
    # From the Standard Webhooks reference implementation's tests.
    headers = webhooks.signed_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
        '{"test": 2432232314}')
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330")


def test_message_ids_and_secrets_are_fresh_and_safe_to_sign():
    ids = {webhooks.new_message_id() for _ in range(100)}
    assert len(ids) == 100 and not any("." in i for i in ids)
    assert len({webhooks.new_secret() for _ in range(100)}) == 100


def test_the_webhook_payload_is_in_the_openapi_description(client):
    spec = client.get("/openapi.json").get_json()
    event = spec["components"]["schemas"]["WebhookEvent"]
    assert set(event["properties"]) == {"type", "timestamp", "data"}
    assert event["properties"]["type"]["enum"] == ALL_EVENTS


# --- retention ---------------------------------------------------------------------------

def test_finished_deliveries_are_purged_after_the_retention_period_in_batches(app, world, receiver, runner):
    hook = register(world, "refunds", receiver.url())
    forms_ = []
    for _ in range(6):
        form = world.issue("shop")
        world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
        forms_.append(form["id"])
    assert run_worker(app, Clock(utcnow())).delivered == 6
    old = utcnow() - timedelta(days=40)
    with app.app_context():
        session = database.session()
        rows = {d.payload and json.loads(d.payload)["data"]["form_id"]: d
                for d in session.scalars(select(WebhookDelivery))}
        # delivered, failed, cancelled and pending, 40 days old; one delivered yesterday.
        for form_id, status in zip(forms_, ["delivered", "delivered", "failed", "cancelled", "pending"]):
            rows[form_id].status = status
            rows[form_id].retry_window_start = old
        session.commit()
        events_before = session.scalar(select(func.count()).select_from(Event))
        kept = {rows[forms_[4]].id, rows[forms_[5]].id}

    result = runner.invoke(args=["purge-deliveries", "--older-than-days", "30", "--batch", "3"])

    assert result.exit_code == 0, result.output
    assert result.output == ("4 finished webhook delivery(ies) older than 30 day(s) deleted, "
                             "with their attempts.\n")
    with app.app_context():
        session = database.session()
        assert set(session.scalars(select(WebhookDelivery.id))) == kept
        assert set(session.scalars(select(WebhookAttempt.delivery_id))) == kept
        assert session.scalar(select(func.count()).select_from(Event)) == events_before
    assert runner.invoke(args=["verify-audit"]).output.startswith("audit trail intact")
    assert [d["id"] for d in deliveries_of(world, "refunds", hook["id"])] == sorted(kept, reverse=True)
    again = runner.invoke(args=["purge-deliveries", "--older-than-days", "30"])
    assert again.output.startswith("0 finished webhook delivery(ies)")
