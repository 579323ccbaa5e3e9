"""Many requests at the same moment, over real HTTP on 127.0.0.1: kiosks
scanning one form together, officers pressing "validate" together, a till
retrying an issue with one Idempotency-Key. Each outcome must happen once."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from api import auth, database
from api.models import User
from tests.builders import PASSWORD, form_body, item, traveller
from tests.conftest import BACKENDS
from tests.servers import free_port, gunicorn_command, server_environment, serving

PROBLEM = "application/problem+json"


# --- small helpers ----------------------------------------------------------

def all_at_once(requests_to_send):
    """Send each (method, url, headers, json) from its own thread and its own
    requests.Session, released together; the responses in the same order as
    (status, content type, headers, body)."""
    start = threading.Barrier(len(requests_to_send), timeout=30)

    def send(request):
        method, url, headers, body = request
        with requests.Session() as http:
            start.wait()
            r = http.request(method, url, headers=headers, json=body, timeout=60)
            return r.status_code, r.headers.get("Content-Type"), r.headers, r.json()

    with ThreadPoolExecutor(max_workers=len(requests_to_send)) as pool:
        return list(pool.map(send, requests_to_send))


def access_token(app, user_id) -> str:
    """An officer's access token, as POST /auth/token gives it (without
    spending the login rate limit on ten logins)."""
    with app.app_context():
        return auth.issue_access_token(database.session().get(User, user_id))[0]


def bearer(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


def events(world, form_id, who="shop") -> list[dict]:
    r = world.get(who, f"/api/v1/forms/{form_id}/events")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def types(evts) -> list[str]:
    return [e["type"] for e in evts]


# --- tests ------------------------------------------------------------------

def test_thirty_kiosks_scanning_one_form_at_once_validate_it_once(world, live_server, figures):
    kiosks = [world.devices["kiosk"]]
    for n in range(2, 6):
        r = world.post("root", "/api/v1/devices", {"name": f"kiosk-{n}", "kind": "kiosk", "exit_point": "AMS"})
        assert r.status_code == 201, r.get_json()
        kiosks.append(r.get_json()["token"])
    form = world.issue("shop", item(), traveller=traveller())

    responses = all_at_once([
        ("POST", f"{live_server}/api/v1/scans", bearer(kiosks[n % len(kiosks)]), {"qr_payload": form["qr_payload"]})
        for n in range(30)
    ])

    assert [(status, body.get("verdict"), body.get("form_id"), body.get("reason_code"))
            for status, _, _, body in responses] == [(200, "validated", form["id"], None)] * 30
    evts = events(world, form["id"])
    assert types(evts).count("form.validated") == 1
    scanned = [e for e in evts if e["type"] == "form.scanned"]
    assert len(scanned) == 30
    assert {(e["data"]["verdict"], e["exit_point"]) for e in scanned} == {("validated", "AMS")}
    assert types(evts)[:2] == ["form.issued", "form.validated"]
    r = world.get("shop", f"/api/v1/forms/{form['id']}")
    assert (r.get_json()["status"], r.get_json()["exit_point"]) == ("validated", "AMS")
    figures(sent=30, validations=types(evts).count("form.validated"), scan_events=len(scanned),
            errors=sum(status != 200 for status, *_ in responses))


def test_kiosks_scanning_a_watch_at_once_open_one_check_at_the_desk(world, live_server):
    form = world.issue("shop", item(60500, category="watches"), traveller=traveller())

    responses = all_at_once([
        ("POST", f"{live_server}/api/v1/scans", bearer(world.devices["kiosk"]), {"qr_payload": form["qr_payload"]})
        for _ in range(10)
    ])

    assert [(status, body.get("verdict"), body.get("reason_code")) for status, _, _, body in responses] == [
        (200, "check_required", "selected_for_check")] * 10
    r = world.get("officer", "/api/v1/checks?exit_point=AMS")
    assert [c["form_id"] for c in r.get_json()["items"]] == [form["id"]]
    evts = types(events(world, form["id"]))
    assert evts[:2] == ["form.issued", "form.check_required"]
    assert (evts.count("form.check_required"), evts.count("form.scanned")) == (1, 10)


def test_kiosks_scanning_a_form_someone_listens_to_at_once_write_one_outbox_row(app, world, live_server, figures):
    # The outbox row goes in the verdict's statement: a scan whose
    # compare-and-set lost writes none (nor fails for it).
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True  # registered, never delivered here
    r = world.post("refunds", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["form.validated"]})
    assert r.status_code == 201, r.get_json()
    form = world.issue("shop", item(), traveller=traveller())

    responses = all_at_once([
        ("POST", f"{live_server}/api/v1/scans", bearer(world.devices["kiosk"]), {"qr_payload": form["qr_payload"]})
        for _ in range(20)
    ])

    assert [(status, body.get("verdict")) for status, _, _, body in responses] == [(200, "validated")] * 20, [
        body for _, _, _, body in responses]
    evts = events(world, form["id"])
    assert (types(evts).count("form.validated"), types(evts).count("form.scanned")) == (1, 20)
    [validated] = [e for e in evts if e["type"] == "form.validated"]
    with app.app_context():
        outbox = database.session().execute(text(
            "SELECT d.event_id, d.event_type FROM webhook_deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE e.form_id = :form_id"), {"form_id": form["id"]}).all()
    assert [tuple(row) for row in outbox] == [(validated["id"], "form.validated")]
    figures(sent=20, validations=1, outbox_rows=len(outbox))


def ten_officers_decide_one_form_at_once(app, world, base_url, figures):
    officers = {}
    for n in range(3, 13):
        name = f"officer{n}"
        r = world.post("root", "/api/v1/users", {"username": name, "password": PASSWORD, "role": "officer"})
        assert r.status_code == 201, r.get_json()
        officers[name] = (r.get_json()["id"], access_token(app, r.get_json()["id"]))
        # All ten are on duty at the Schiphol desk.
        duty = world.client.post("/api/v1/duty", json={"exit_point": "AMS"}, headers=bearer(officers[name][1]))
        assert duty.status_code == 201, duty.get_json()
    form = world.issue("shop", item(60500, category="watches"), traveller=traveller())
    r = world.scan("kiosk", form["qr_payload"])
    assert r.get_json()["verdict"] == "check_required"

    responses = all_at_once([
        ("POST", f"{base_url}/api/v1/forms/{form['id']}/decision", bearer(token), {"outcome": "validated"})
        for _, token in officers.values()
    ])

    statuses = sorted(status for status, _, _, _ in responses)
    assert statuses == [200] + [409] * 9
    conflicts = [(ctype, body["code"], body["status"]) for status, ctype, _, body in responses if status == 409]
    assert conflicts == [(PROBLEM, "already_decided", 409)] * 9
    [winner] = [i for i, (status, *_) in enumerate(responses) if status == 200]
    assert responses[winner][3]["status"] == "validated"
    winner_id = list(officers.values())[winner][0]
    evts = events(world, form["id"], who="officer")
    assert types(evts) == ["form.issued", "form.check_required", "form.scanned", "form.validated"]
    assert evts[-1]["actor"] == f"user:{winner_id}"
    r = world.get("officer", "/api/v1/checks?exit_point=AMS&status=decided")
    assert [(c["form_id"], c["outcome"]) for c in r.get_json()["items"]] == [(form["id"], "validated")]
    figures(sent=10, decided=statuses.count(200), conflicts=statuses.count(409),
            validations=types(evts).count("form.validated"), errors=sum(s not in (200, 409) for s in statuses))


def test_ten_officers_deciding_one_form_at_once_give_one_decision(app, world, live_server, figures):
    ten_officers_decide_one_form_at_once(app, world, live_server, figures)


def test_twenty_retries_of_one_issue_with_one_idempotency_key_store_one_form(world, live_server, figures):
    body = {
        "invoice_number": "INV-RETRY-1",
        "purchase_date": world.issue("books")["purchase_date"],
        "traveller": traveller(),
        "items": [item()],
    }
    headers = {**bearer(world.tokens["shop"]), "Idempotency-Key": "till-7-retry-0001"}

    responses = all_at_once([("POST", f"{live_server}/api/v1/forms", headers, body)] * 20)

    assert [status for status, _, _, _ in responses] == [201] * 20, [
        (status, b.get("code"), b.get("detail")) for status, _, _, b in responses if status != 201]
    ids = {b["id"] for _, _, _, b in responses}
    assert len(ids) == 1
    [form_id] = ids
    replayed = [h.get("Idempotent-Replayed") for _, _, h, _ in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * 19
    r = world.get("shop", "/api/v1/forms")
    assert [f["id"] for f in r.get_json()["items"]] == [form_id]
    assert types(events(world, form_id)) == ["form.issued"]
    figures(sent=20, forms_stored=len(r.get_json()["items"]), duplicated=len(r.get_json()["items"]) - 1, errors=0)


def test_twenty_resends_of_one_kiosk_scan_with_one_idempotency_key_record_it_once(world, live_server, figures):
    # The answer for the key is stored before the verdict's write: the
    # resends wait on it there and replay it, none writes a scan of its own.
    form = world.issue("shop", item(), traveller=traveller())
    headers = {**bearer(world.devices["kiosk"]), "Idempotency-Key": "kiosk-1-scan-0001"}

    responses = all_at_once([("POST", f"{live_server}/api/v1/scans", headers,
                              {"qr_payload": form["qr_payload"]})] * 20)

    assert [(status, body.get("verdict"), body.get("form_id")) for status, _, _, body in responses] == [
        (200, "validated", form["id"])] * 20, [body for _, _, _, body in responses]
    assert len({repr(body) for _, _, _, body in responses}) == 1
    replayed = [h.get("Idempotent-Replayed") for _, _, h, _ in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * 19
    assert types(events(world, form["id"])) == ["form.issued", "form.validated", "form.scanned"]
    figures(sent=20, scans_recorded=types(events(world, form["id"])).count("form.scanned"),
            replayed=replayed.count("true"))


# --- the production server: gunicorn, four worker processes ------------------

@pytest.fixture
def gunicorn_url(database_url, app, tmp_path):
    """The app under gunicorn with four worker processes (each its own
    connection pool and key cache) on the test's database."""
    port = free_port()
    env = server_environment(app, database_url, tmp_path / "gunicorn")
    with serving(gunicorn_command(port, workers=4), port, env, ready="/readyz") as url:
        yield url


def test_fifty_scans_of_one_form_across_four_gunicorn_workers_validate_it_once(app, world, gunicorn_url, figures):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hook = world.post("shop", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["form.validated"]})
    assert hook.status_code == 201, hook.get_json()
    kiosks = [world.devices["kiosk"]]
    for n in range(2, 6):
        r = world.post("root", "/api/v1/devices", {"name": f"kiosk-{n}", "kind": "kiosk", "exit_point": "AMS"})
        kiosks.append(r.get_json()["token"])
    form = world.issue("shop", item(), traveller=traveller())

    responses = all_at_once([
        ("POST", f"{gunicorn_url}/api/v1/scans", bearer(kiosks[n % len(kiosks)]), {"qr_payload": form["qr_payload"]})
        for n in range(50)
    ])

    assert {(status, body.get("verdict")) for status, _, _, body in responses} == {(200, "validated")}
    evts = events(world, form["id"])
    assert types(evts).count("form.validated") == 1
    assert types(evts).count("form.scanned") == 50
    deliveries = world.get("shop", f"/api/v1/webhooks/{hook.get_json()['id']}/deliveries").get_json()["items"]
    assert [d["event_type"] for d in deliveries] == ["form.validated"]
    figures(sent=50, validations=types(evts).count("form.validated"), scan_events=types(evts).count("form.scanned"),
            outbox_events=len(deliveries), errors=sum(status != 200 for status, *_ in responses))


def test_ten_officers_deciding_one_form_across_four_gunicorn_workers_give_one_decision(
        app, world, gunicorn_url, figures):
    ten_officers_decide_one_form_at_once(app, world, gunicorn_url, figures)


def start_well_inside_a_minute():
    """The limits count per fixed window; a burst must not straddle two."""
    import time
    while time.time() % 60 > 45:
        time.sleep(0.5)


def test_password_guessing_across_four_gunicorn_workers_is_stopped_at_the_shared_limit(
        world, app, database_url, tmp_path, figures):
    # Thirty guesses at once keep all four workers busy: the wait after the
    # free failures holds only if they share one counter, and only if
    # guesses sent together count as if sent one by one. (A long first
    # wait, so that no guess of the burst arrives after it ends.)
    r = world.post("root", "/api/v1/users", {"username": "clerk", "password": PASSWORD, "role": "retailer",
                                             "retailer_id": world.ids["shop"]})
    assert r.status_code == 201, r.get_json()
    port = free_port()
    env = {**server_environment(app, database_url, tmp_path / "gunicorn"), "FAILED_ATTEMPTS_FIRST_WAIT_SECONDS": "600"}
    with serving(gunicorn_command(port, workers=4), port, env, ready="/readyz") as gunicorn_url:
        responses = all_at_once([
            ("POST", f"{gunicorn_url}/api/v1/auth/token", {}, {"username": "clerk", "password": f"guess-{n}"})
            for n in range(30)
        ])

    statuses = [status for status, *_ in responses]
    assert sorted(statuses) == [401] * 3 + [429] * 27
    for status, ctype, headers, body in responses:
        if status == 429:
            assert (ctype, body["code"]) == (PROBLEM, "too_many_requests")
            assert 1 <= int(headers["Retry-After"]) <= 600
    figures(sent=30, let_through=statuses.count(401), refused_429=statuses.count(429), limit=3,
            errors=sum(s not in (401, 429) for s in statuses))


def test_status_lookups_across_four_gunicorn_workers_are_stopped_at_the_shared_limit(world, gunicorn_url, figures):
    forms = [world.issue("shop") for _ in range(30)]
    start_well_inside_a_minute()
    responses = all_at_once([
        ("POST", f"{gunicorn_url}/api/v1/status/{form['id']}", {}, {"last_name": "Chen"}) for form in forms
    ])

    statuses = [status for status, *_ in responses]
    # Twenty lookups a minute per address.
    assert sorted(statuses) == [200] * 20 + [429] * 10
    assert all("Retry-After" in headers for status, _, headers, _ in responses if status == 429)
    figures(sent=30, let_through=statuses.count(200), refused_429=statuses.count(429), limit=20,
            errors=sum(s not in (200, 429) for s in statuses))


def test_a_passport_read_while_its_forms_are_scanned_one_by_one_never_deadlocks(app, world, live_server, runner,
                                                                                 figures):
    """A passport read judges the traveller's forms one after the other in
    one transaction while another kiosk scans the same forms' QR codes in
    the opposite order. Every writer locks the forms' rows before the
    change feed's and the audit chain's counters (a lone scan takes the
    counters with its verdict, the passport read only as it commits), so
    no request waits on another that waits on it: each gets its answer,
    none is picked as a deadlock's victim."""
    passport_kiosk, qr_kiosk = world.devices["kiosk"], world.devices["rtm-kiosk"]
    answered = 0
    for round_ in range(6):
        passport = f"D{round_:07d}"
        forms = [world.issue("shop", traveller=traveller(passport_number=passport)) for _ in range(4)]
        responses = all_at_once(
            [("POST", f"{live_server}/api/v1/scans/passport", bearer(passport_kiosk),
              {"passport_number": passport, "passport_country": "CN"})]
            + [("POST", f"{live_server}/api/v1/scans", bearer(qr_kiosk), {"qr_payload": form["qr_payload"]})
               for form in reversed(forms)])
        assert [status for status, *_ in responses] == [200] * 5, [body for *_, body in responses]
        answered += len(responses)
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 0, result.output
    figures(requests=answered, errors=0, deadlocks=0)


def test_a_form_issued_while_a_batch_holds_its_invoice_waits_for_the_batch_without_a_deadlock(app, world, live_server,
                                                                                              figures):
    """A till issues a form for an invoice that a batch being stored at
    that moment has just inserted. The lone issue takes the change feed's
    and the audit chain's counters in its own statement, the batch only as
    it commits: were the lone issue to take them before waiting for the
    invoice, each would wait for the other (and PostgreSQL would end one of
    them with a 503 after a second). Every insert of a form takes the
    invoice's lock first, so the lone issue waits holding nothing: the
    batch commits, the till is told the invoice has a form."""
    from api.resources.forms import _issuer
    from api.services import batch
    from api.models import utcnow
    from api.schemas import FormCreate

    world.issue("shop", invoice="FIRST")  # the signing key and the counters exist
    inserted, till_sent, outcome = threading.Event(), threading.Event(), {}

    def store_batch():
        with app.test_request_context(headers=bearer(world.tokens["shop"])):
            session = database.session()
            try:
                drafts = [FormCreate().load(form_body(invoice=f"RACE-{n}")) for n in (1, 2)]
                stored = batch.issue_each(session, auth.current_principal(), drafts, _issuer(), utcnow())
                inserted.set()
                till_sent.wait(10)
                waiting_for_a_lock()  # the till's request, for the invoice
                session.commit()
                outcome["batch"] = [getattr(f, "id", f) for f in stored]
            except Exception as error:  # reported below, not lost in the thread
                outcome["batch"] = error
                inserted.set()

    def waiting_for_a_lock():
        """Until another session waits for a lock (PostgreSQL), or half a
        second (SQLite has one writer: the till waits for the batch's
        transaction)."""
        engine = app.extensions["db_engine"]
        if engine.dialect.name != "postgresql":
            time.sleep(0.5)
            return
        deadline = time.monotonic() + 10
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                if conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                            "AND datname = current_database()")):
                    return
                conn.rollback()
                time.sleep(0.02)
        raise AssertionError("the till's request never waited for the invoice")

    storing = threading.Thread(target=store_batch)
    storing.start()
    assert inserted.wait(10)
    till_sent.set()
    started = time.monotonic()
    r = requests.post(f"{live_server}/api/v1/forms", json=form_body(invoice="RACE-1"),
                      headers=bearer(world.tokens["shop"]), timeout=30)
    waited = time.monotonic() - started
    storing.join(30)

    assert not isinstance(outcome.get("batch"), Exception), outcome
    assert len(outcome["batch"]) == 2
    assert r.status_code == 409 and r.json()["code"] == "duplicate_invoice", r.json()
    listed = world.get("shop", "/api/v1/forms").get_json()["items"]
    assert sorted(f["invoice_number"] for f in listed) == ["FIRST", "RACE-1", "RACE-2"]
    assert {f["id"] for f in listed} >= set(outcome["batch"])
    figures(waited_ms=round(waited * 1000), deadlocks=0)


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_scan_ended_by_a_deadlock_is_told_to_send_again_and_goes_through_when_it_does(app, world, live_server):
    """No request of the API's waits for another in the opposite order (the
    tests above), but a deadlock with something else (a hand-run fix in
    psql, say) still ends one side. A scan that PostgreSQL picks is
    answered 503 with Retry-After: the database is there, nothing of the
    scan was kept (a kiosk keeps a 5xx in its queue and sends it again;
    a 4xx it would drop), and sent again it goes through."""
    form = world.issue("shop")  # the chains' counters exist
    engine = app.extensions["db_engine"]
    answered = {}

    def scan():
        answered["scan"] = requests.post(f"{live_server}/api/v1/scans", json={"qr_payload": form["qr_payload"]},
                                         headers=world.auth("kiosk"), timeout=30)

    with engine.connect() as other, engine.connect() as watcher:
        # Every audit chain held: the scan's commit waits for chain 0.
        other.execute(text("UPDATE change_counters SET value = value WHERE name = 'audit' OR name LIKE 'audit.%'"))
        scanning = threading.Thread(target=scan)
        scanning.start()
        deadline = time.monotonic() + 10
        while not watcher.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      "AND datname = current_database()")):
            assert time.monotonic() < deadline, "the scan never waited for the counter"
            watcher.rollback()
            time.sleep(0.02)
        # The scan holds the form's row and waits for the counter this side
        # holds; now this side waits for the form's row. PostgreSQL looks
        # for a deadlock in a session a second (deadlock_timeout) after it
        # began to wait: the scan's looks first, finds it and ends.
        other.execute(text("SELECT id FROM forms WHERE id = :id FOR UPDATE"), {"id": form["id"]})
        scanning.join(30)
        other.rollback()

    r = answered["scan"]
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "try_again" and "send this request again" in r.json()["detail"]
    assert types(events(world, form["id"])) == ["form.issued"]

    again = world.scan("kiosk", form["qr_payload"])
    assert again.status_code == 200 and again.get_json()["verdict"] == "validated"
    assert types(events(world, form["id"])) == ["form.issued", "form.validated", "form.scanned"]
