"""The kiosk's API client against a live API server on 127.0.0.1: verdicts,
keys, idempotent resends, and every way of being offline."""
from __future__ import annotations

import socket
import threading
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shared import qrtoken
from shared.client import ApiError, DeviceRejected, KioskClient, Offline, Verdict
from tests.servers import free_port

WATCH = {"description": "Watch", "quantity": 1, "unit_price_cents": 125000, "vat_rate": 21,
         "category": "watches", "serial_number": "SN-1"}


def kiosk(live_server, world, **kw) -> KioskClient:
    return KioskClient(live_server, world.devices["kiosk"], **kw)


def scanned_events(world, form_id) -> int:
    items = world.get("shop", f"/api/v1/forms/{form_id}/events").get_json()["items"]
    return [e["type"] for e in items].count("form.scanned")


@pytest.fixture
def closed_port():
    """A port nothing listens on: connections are refused at once."""
    return free_port()


@pytest.fixture
def stub_server():
    """A tiny HTTP server answering every request with (status, headers, body)."""
    servers = []

    def start(status: int, headers: dict | None = None, body: bytes = b"{}"):
        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    if name != "Date":  # send_response sends it (date_time_string)
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

            def date_time_string(self, timestamp=None):
                return (headers or {}).get("Date") or super().date_time_string(timestamp)

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_kiosk_scan_of_a_fresh_form_comes_back_validated(live_server, world):
    form = world.issue()
    verdict = kiosk(live_server, world).scan(form["qr_payload"])
    assert verdict == Verdict(
        verdict="validated", reason_code=None,
        message="Export validated. Your refund will be paid by Refunds Inc.",
        form_id=form["id"], export_deadline=date.fromisoformat(form["export_deadline"]),
        desk_location=None, payer="Refunds Inc")


def test_a_watch_goes_to_the_desk_with_the_desk_location(live_server, world):
    form = world.issue("shop", WATCH)
    verdict = kiosk(live_server, world).scan(form["qr_payload"])
    assert (verdict.verdict, verdict.reason_code, verdict.desk_location) == (
        "check_required", "selected_for_check", "Departures 2")


def test_a_qr_code_that_is_not_a_form_is_refused_with_a_reason(live_server, world):
    verdict = kiosk(live_server, world).scan("https://example.com/menu")
    assert (verdict.verdict, verdict.reason_code, verdict.form_id) == ("refused", "malformed_token", None)


def test_the_published_keys_verify_a_form_offline(live_server, world):
    form = world.issue()
    keys = qrtoken.KeySet(kiosk(live_server, world).jwks())
    assert qrtoken.verify_form_token(form["qr_payload"], keys).form_id == form["id"]


def test_the_same_scan_resent_with_its_key_is_answered_once(live_server, world):
    form = world.issue()
    client = kiosk(live_server, world)
    scanned_at = client.now() - timedelta(minutes=3)
    first = client.scan(form["qr_payload"], idempotency_key="scan-1", scanned_at=scanned_at)
    again = client.scan(form["qr_payload"], idempotency_key="scan-1", scanned_at=scanned_at)
    assert (first.replayed, again.replayed) == (False, True)
    assert first.verdict == again.verdict == "validated"
    assert scanned_events(world, form["id"]) == 1


def test_a_passport_pulls_up_every_open_form_of_its_holder(live_server, world):
    coat, watch = world.issue(), world.issue("shop", WATCH)
    verdicts = kiosk(live_server, world).scan_passport("E12345678", "CN", idempotency_key="passport-1")
    assert {v.form_id: v.verdict for v in verdicts} == {
        coat["id"]: "validated", watch["id"]: "check_required"}


def test_health_says_whether_the_api_answers(live_server, world, closed_port):
    assert kiosk(live_server, world).health()
    assert not KioskClient(f"http://127.0.0.1:{closed_port}", "t").health()


def test_a_refused_connection_is_offline(closed_port):
    with pytest.raises(Offline):
        KioskClient(f"http://127.0.0.1:{closed_port}", "t").scan("x", idempotency_key="k")


def test_an_api_that_does_not_answer_in_time_is_offline():
    # Listening but never accepting: the connection opens, no answer comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        client = KioskClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "t", timeout=(0.2, 0.2))
        with pytest.raises(Offline):
            client.scan("x")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_rate_limits_are_offline_not_a_verdict(stub_server, status):
    with pytest.raises(Offline):
        KioskClient(stub_server(status), "t").scan("x")


def test_an_invalid_request_is_an_api_error_with_the_problem_code(live_server, world):
    with pytest.raises(ApiError) as err:
        kiosk(live_server, world).scan("x", scanned_at=datetime.now(timezone.utc) - timedelta(days=30))
    assert (err.value.status, err.value.code) == (422, "invalid_request")
    assert list(err.value.errors) == ["scanned_at"]


def test_a_revoked_or_wrong_device_token_is_device_rejected(live_server, world):
    with pytest.raises(DeviceRejected) as err:
        KioskClient(live_server, "dev_not-a-real-token").scan("x")
    assert err.value.status == 401
    with pytest.raises(DeviceRejected):
        KioskClient(live_server, None).scan("x")


def test_the_client_dates_scans_by_the_servers_clock(stub_server):
    server_time = datetime.now(timezone.utc) + timedelta(hours=1)
    client = KioskClient(stub_server(200, {"Date": format_datetime(server_time, usegmt=True)}), "t")
    assert client.health()
    assert abs(client.now() - server_time) < timedelta(seconds=5)
