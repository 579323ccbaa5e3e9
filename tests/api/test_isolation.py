"""A fault in one part never slows another down: a webhook receiver that
hangs does not hold up a single scan (deliveries leave through the outbox,
sent by a worker process of their own), and a scan never reads the
officers' queue, however long it grows (its own queries and index). The
kiosk's full disk is in tests/kiosk/test_kiosk_desk.py."""
from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from sqlalchemy import event, func, select

from api import database
from api.models import Scan, WebhookDelivery
from tests.builders import item, traveller
from tests.servers import ROOT, free_port, gunicorn_command, server_environment, serving

HANG_SECONDS = 30


class HangingReceiver:
    """A webhook receiver that reads each request and then says nothing for
    30 seconds (or until released)."""

    def __init__(self):
        self.release = threading.Event()
        self.hanging = 0  # requests it is holding right now
        self.received = 0
        self.answered = 0
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received += 1
                receiver.hanging += 1
                receiver.arrived.set()
                receiver.release.wait(HANG_SECONDS)
                receiver.hanging -= 1
                receiver.answered += 1
                try:
                    self.send_response(204)
                    self.end_headers()
                except OSError:
                    pass  # the worker stopped waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_scans_keep_completing_while_a_webhook_receiver_hangs(app, world, database_url, tmp_path, figures):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    forms = [world.issue("shop", item(), traveller=traveller(passport_number=f"H{n:08d}")) for n in range(51)]
    with HangingReceiver() as receiver:
        hook = world.post("shop", "/api/v1/webhooks", {"url": receiver.url, "events": ["form.validated"]})
        assert hook.status_code == 201, hook.get_json()
        port = free_port()
        env = {**server_environment(app, database_url, tmp_path / "instance"), "WEBHOOKS_ALLOW_PRIVATE": "true",
               "WEBHOOKS_TIMEOUT_SECONDS": str(HANG_SECONDS), "WEBHOOKS_LEASE_SECONDS": "300",
               "WEBHOOKS_POLL_SECONDS": "0.2"}
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "api", "deliver-webhooks", "--forever"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with serving(gunicorn_command(port, workers=2), port, env, ready="/readyz") as url:
                def scan(form):
                    return requests.post(f"{url}/api/v1/scans", json={"qr_payload": form["qr_payload"]},
                                         headers=world.auth("kiosk"), timeout=HANG_SECONDS * 2)

                # The first validation's webhook goes out, and the receiver holds it.
                assert scan(forms[0]).json()["verdict"] == "validated"
                assert receiver.arrived.wait(60), "the worker never called the receiver"
                assert receiver.hanging == 1

                with ThreadPoolExecutor(8) as pool:
                    answers = list(pool.map(scan, forms[1:]))
                hanging_when_done = receiver.hanging
                answered_when_done = receiver.answered
                assert worker.poll() is None  # still stuck on the receiver, not crashed
                with app.app_context():
                    session = database.session()
                    recorded = session.scalar(select(func.count()).select_from(Scan))
                    waiting = session.scalar(select(func.count()).select_from(WebhookDelivery)
                                             .where(WebhookDelivery.status == "pending"))
        finally:
            receiver.release.set()
            worker.terminate()
            worker.wait(60)
    verdicts = [a.json()["verdict"] for a in answers]
    figures(scans=len(answers), validated=verdicts.count("validated"), scans_recorded=recorded,
            receiver_still_hanging=hanging_when_done, deliveries_waiting=waiting)
    assert verdicts == ["validated"] * 50
    assert (hanging_when_done, answered_when_done) == (1, 0)  # all 50 done while the receiver still hung
    assert recorded == 51
    # Every validation has its delivery in the outbox, to be sent once the receiver answers.
    assert waiting == 51


def test_a_scan_never_reads_the_officers_queue(app, world):
    """The desk's queue is its own statement on its own partial index: a
    scan's statements never read the checks table (it only adds a check
    when it sends a traveller to the desk), however long the queue is."""
    for n in range(30):
        world.scan("kiosk", world.issue("shop", item(125000, category="watches", serial_number=f"SN-{n}"),
                                        traveller=traveller(passport_number=f"Q{n:08d}"))["qr_payload"])
    plain = world.issue("shop", traveller=traveller(passport_number="Q99999999"))
    watch = world.issue("shop", item(125000, category="watches", serial_number="SN-X"),
                        traveller=traveller(passport_number="Q99999998"))
    statements = []
    engine = app.extensions["db_engine"]

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert world.scan("kiosk", plain["qr_payload"]).get_json()["verdict"] == "validated"
        assert world.scan("kiosk", watch["qr_payload"]).get_json()["verdict"] == "check_required"
        assert world.scan("kiosk", watch["qr_payload"]).get_json()["verdict"] == "check_required"  # again
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    touching = [s for s in statements if "checks" in s]
    assert statements and all(s.startswith("insert into checks") for s in touching), touching
    assert len(touching) == 1  # the one check opened; the queue of 30 was never read
