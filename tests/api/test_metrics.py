"""GET /metrics: Prometheus' view of the API. Counts made by several
gunicorn workers add up in one scrape; the queue, the webhook backlog and
the fleet are read from the database at scrape time; only the monitoring
system may scrape."""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from api.observability import metrics
from api.observability.collector import DatabaseCollector
from api.services.fleet import FleetRules
from tests.builders import item, traveller
from tests.servers import free_port, gunicorn_command, server_environment, serving

TOKEN = "metrics-token-for-tests"
WATCH = item(125000, category="watches", serial_number="SN-1")


def samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, metric: str, /, **labels) -> float:
    return found.get((metric, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("text/plain")
    return samples(r.get_data(as_text=True))


@pytest.fixture
def scraper(app):
    app.config["METRICS_TOKEN"] = TOKEN
    return app


def test_only_the_monitoring_system_may_scrape(client, world, scraper):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    world.auth("officer"), world.auth("root"), world.auth("kiosk")):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.content_type == "application/problem+json" and r.get_json()["code"] == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "taxfree_database_up 1.0" in client.get(
        "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)


def test_an_allowed_network_may_scrape_without_a_token_and_others_may_not(client, app):
    from api.resources.metrics import allowed_networks

    assert client.get("/metrics").status_code == 403  # neither a token nor networks: nobody
    app.extensions["metrics_networks"] = allowed_networks("10.20.0.0/16, 192.0.2.7")
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.3.4"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    for stranger in ("10.21.0.1", "192.0.2.8", "127.0.0.1"):
        refused = client.get("/metrics", environ_base={"REMOTE_ADDR": stranger})
        assert refused.status_code == 403 and refused.get_json()["code"] == "forbidden", stranger
    with pytest.raises(ValueError):
        allowed_networks("10.0.0.0/33")


def test_verdicts_are_counted_by_exit_point_channel_and_verdict_once_each(client, world, scraper):
    handheld = world.post("root", "/api/v1/devices", {"name": "desk-1", "kind": "handheld", "exit_point": "AMS"})
    world.devices["handheld"] = handheld.get_json()["token"]
    before = scrape(client)
    coat, watch, cancelled, other = world.issue(), world.issue("shop", WATCH), world.issue(), world.issue()
    world.post("shop", f"/api/v1/forms/{cancelled['id']}/cancel")
    assert world.scan("kiosk", coat["qr_payload"]).get_json()["verdict"] == "validated"
    assert world.scan("kiosk", watch["qr_payload"]).get_json()["verdict"] == "check_required"
    assert world.scan("kiosk", cancelled["qr_payload"]).get_json()["verdict"] == "refused"
    assert world.scan("handheld", other["qr_payload"]).get_json()["verdict"] == "validated"
    # A retry with the same Idempotency-Key replays the verdict: counted once.
    again = {"Idempotency-Key": "retry-1"}
    assert world.post("rtm-kiosk", "/api/v1/scans", {"qr_payload": coat["qr_payload"]}, headers=again).status_code == 200
    replay = world.post("rtm-kiosk", "/api/v1/scans", {"qr_payload": coat["qr_payload"]}, headers=again)
    assert replay.headers["Idempotent-Replayed"] == "true"
    decided = world.post("officer", f"/api/v1/forms/{watch['id']}/decision",
                         {"outcome": "rejected", "reason_code": "goods_not_presented"})
    assert decided.status_code == 200
    assert world.post("officer", f"/api/v1/forms/{watch['id']}/decision",
                      {"outcome": "validated"}).status_code == 409  # not a verdict
    after = scrape(client)

    def delta(**labels):
        return (value(after, "taxfree_verdicts_total", **labels)
                - value(before, "taxfree_verdicts_total", **labels))

    assert delta(exit_point="AMS", channel="kiosk", verdict="validated") == 1
    assert delta(exit_point="AMS", channel="kiosk", verdict="check_required") == 1
    assert delta(exit_point="AMS", channel="kiosk", verdict="refused") == 1
    assert delta(exit_point="AMS", channel="desk", verdict="validated") == 1  # the handheld
    assert delta(exit_point="RTM", channel="kiosk", verdict="refused") == 1  # validated elsewhere
    assert delta(exit_point="AMS", channel="desk", verdict="rejected") == 1  # the officer
    with pytest.raises(ValueError):
        metrics.count_verdict("AMS", "web", "validated")


def test_requests_are_counted_by_url_rule_never_by_path(client, world, scraper):
    form = world.issue()
    world.get("shop", f"/api/v1/forms/{form['id']}")
    client.post(f"/api/v1/status/{form['id']}", json={"last_name": "Chen"})
    client.get("/no/such/page")
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    found = samples(text)
    assert value(found, "taxfree_http_requests_total", method="GET", route="/api/v1/forms/<form_id>",
                 status="200") >= 1
    assert value(found, "taxfree_http_requests_total", method="POST", route="/api/v1/status/<form_id>",
                 status="200") >= 1
    assert value(found, "taxfree_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert value(found, "taxfree_http_request_duration_seconds_count", method="POST",
                 route="/api/v1/forms") >= 1
    assert form["id"] not in text and "Chen" not in text and "/no/such" not in text


def test_the_queue_the_webhook_backlog_and_the_fleet_are_read_at_scrape_time(client, world, scraper, app):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hook = world.post("shop", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["form.validated"]})
    assert hook.status_code == 201, hook.get_json()
    for _ in range(3):
        world.scan("kiosk", world.issue()["qr_payload"])
    for _ in range(2):
        world.scan("rtm-kiosk", world.issue("shop", WATCH)["qr_payload"])
    world.post("kiosk", "/api/v1/devices/me/heartbeat", {
        "app_version": "1.2.3", "queue_depth": 4, "camera_ok": False, "free_disk_bytes": 123456789,
        "device_clock": datetime.now(timezone.utc).isoformat()})
    found = scrape(client)
    assert value(found, "taxfree_database_up") == 1
    assert value(found, "taxfree_officer_queue_length", exit_point="RTM") == 2
    assert value(found, "taxfree_officer_queue_length", exit_point="AMS") == 0
    assert value(found, "taxfree_officer_queue_oldest_wait_seconds", exit_point="RTM") >= 0
    assert value(found, "taxfree_webhook_backlog") == 3
    assert value(found, "taxfree_webhook_oldest_undelivered_age_seconds") >= 0
    assert value(found, "taxfree_exit_point_open", exit_point="AMS") == 1
    kiosk = dict(device=world.ids["kiosk"], name="kiosk", exit_point="AMS", kind="kiosk")
    assert value(found, "taxfree_device_offline_queue_depth", **kiosk) == 4
    assert value(found, "taxfree_device_camera_ok", **kiosk) == 0
    assert value(found, "taxfree_device_free_disk_bytes", **kiosk) == 123456789
    assert value(found, "taxfree_devices", exit_point="AMS", state="red") == 1
    assert value(found, "taxfree_devices", exit_point="RTM", state="green") == 1
    assert value(found, "taxfree_device_heartbeats_total", exit_point="AMS", kind="kiosk") >= 1


def test_a_database_that_cannot_be_reached_shows_as_down_and_counts_as_errors():
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    metrics.instrument(engine)
    errors = metrics.DATABASE_ERRORS.labels("OperationalError")
    before = errors._value.get()
    with Session(engine) as session:
        text = metrics.exposition(DatabaseCollector(session, datetime.now(timezone.utc), FleetRules(),
                                                    __import__("zoneinfo").ZoneInfo("Europe/Amsterdam")))
    found = samples(text.decode())
    assert value(found, "taxfree_database_up") == 0
    assert ("taxfree_officer_queue_length", ()) not in found
    assert errors._value.get() == before + 1
    engine.dispose()


# --- several gunicorn workers ----------------------------------------------------------

def _stale_counts(folder) -> None:
    """What a previous run of the server left: a thousand verdicts that
    must not show up in this run's figures."""
    stale = MmapedDict(str(folder / "counter_999999.db"))
    stale.write_value(mmap_key("taxfree_verdicts", "taxfree_verdicts_total", ["exit_point", "channel", "verdict"],
                               ["AMS", "kiosk", "validated"], "stale"), 1000.0, 0.0)
    stale.close()


def _worker_files(folder) -> list[str]:
    return [name for name in os.listdir(folder) if re.fullmatch(r"counter_\d+\.db", name)]


def test_several_gunicorn_workers_count_together_and_strangers_are_refused(app, world, database_url, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    _stale_counts(folder)
    handheld = world.post("root", "/api/v1/devices", {"name": "desk-1", "kind": "handheld", "exit_point": "AMS"})
    world.devices["handheld"] = handheld.get_json()["token"]
    passports = iter(range(100))

    def issue(*items):
        # A traveller each: many forms of one traveller would send them to the desk.
        return world.issue("shop", *items, traveller=traveller(passport_number=f"E{next(passports):08d}"))

    plain = [issue() for _ in range(6)]
    rtm = [issue() for _ in range(2)]
    watches = [issue(WATCH) for _ in range(4)]
    cancelled = [issue() for _ in range(2)]
    for form in cancelled:
        assert world.post("shop", f"/api/v1/forms/{form['id']}/cancel").status_code == 200
    at_desk = issue()
    all_ids = [f["id"] for f in plain + rtm + watches + cancelled + [at_desk]]

    port = free_port()
    env = {**server_environment(app, database_url, tmp_path / "instance"),
           "METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    with serving(gunicorn_command(port, workers=3), port, env, ready="/readyz") as url:
        # Which worker accepts a connection is the kernel's choice: on a busy
        # machine one worker can take the first dozens. Health checks (whose
        # counts are not asserted) until at least two workers have counted.
        with ThreadPoolExecutor(8) as pool:
            for _ in range(100):
                if len(_worker_files(folder)) >= 2:
                    break
                list(pool.map(lambda _: requests.get(url + "/readyz", timeout=30), range(8)))
        assert len(_worker_files(folder)) >= 2, "one worker took every request"

        def post(who, path, body, **headers):
            # requests.post: a new connection each time, so the workers share the load.
            return requests.post(url + path, json=body, timeout=30,
                                 headers={**world.auth(who), **headers})

        scans = ([("kiosk", f) for f in plain + watches + cancelled] + [("rtm-kiosk", f) for f in rtm]
                 + [("handheld", at_desk)])
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda s: post(s[0], "/api/v1/scans", {"qr_payload": s[1]["qr_payload"]}),
                                    scans))
        assert [a.status_code for a in answers] == [200] * len(scans)
        # A re-scan of a validated form is one more verdict (and scan row);
        # the kiosk's retry of it after a lost answer is a replay, not counted.
        for _ in range(2):
            assert post("kiosk", "/api/v1/scans", {"qr_payload": plain[0]["qr_payload"]},
                        **{"Idempotency-Key": "lost-answer"}).status_code == 200
        for form, outcome in zip(watches[:3], ("validated", "validated", "rejected")):
            body = {"outcome": outcome} | ({"reason_code": "goods_used"} if outcome == "rejected" else
                                           {"lines": [{"line": 1, "present": True}]})
            assert post("officer", f"/api/v1/forms/{form['id']}/decision", body).status_code == 200
        for device in ("kiosk", "rtm-kiosk"):
            assert post(device, "/api/v1/devices/me/heartbeat", {
                "app_version": "0.1.0", "queue_depth": 0, "free_disk_bytes": 10 ** 10,
                "device_clock": datetime.now(timezone.utc).isoformat()}).status_code == 200

        # Strangers get a problem, whichever worker answers.
        for headers in ({}, {"Authorization": "Bearer wrong"}, world.auth("officer")):
            refused = requests.get(f"{url}/metrics", headers=headers, timeout=10)
            assert refused.status_code == 401
            assert refused.headers["Content-Type"] == "application/problem+json"

        scrapes = []
        for _ in range(4):
            r = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            assert r.status_code == 200
            scrapes.append(r.text)
    worker_files = _worker_files(folder)

    found = samples(scrapes[-1])
    verdicts = {labels: v for (name, labels), v in found.items() if name == "taxfree_verdicts_total"}
    assert verdicts == {
        (("channel", "kiosk"), ("exit_point", "AMS"), ("verdict", "validated")): 6 + 1,
        (("channel", "kiosk"), ("exit_point", "AMS"), ("verdict", "check_required")): 4,
        (("channel", "kiosk"), ("exit_point", "AMS"), ("verdict", "refused")): 2,
        (("channel", "kiosk"), ("exit_point", "RTM"), ("verdict", "validated")): 2,
        (("channel", "desk"), ("exit_point", "AMS"), ("verdict", "validated")): 3,
        (("channel", "desk"), ("exit_point", "AMS"), ("verdict", "rejected")): 1,
    }
    assert value(found, "taxfree_http_requests_total", method="POST", route="/api/v1/scans", status="200") == 17
    assert value(found, "taxfree_http_requests_total", method="POST",
                 route="/api/v1/forms/<form_id>/decision", status="200") == 3
    assert value(found, "taxfree_http_request_duration_seconds_count", method="POST", route="/api/v1/scans") == 17
    assert value(found, "taxfree_http_requests_total", method="GET", route="/metrics", status="401") == 3
    assert value(found, "taxfree_device_heartbeats_total", exit_point="AMS", kind="kiosk") == 1
    assert value(found, "taxfree_device_heartbeats_total", exit_point="RTM", kind="kiosk") == 1
    assert value(found, "taxfree_officer_queue_length", exit_point="AMS") == 1
    assert value(found, "taxfree_db_pool_connections_limit") > 0
    # Every worker's scrape adds up the same counts.
    assert len({tuple(sorted((k, v) for k, v in samples(s).items() if k[0] == "taxfree_verdicts_total"))
                for s in scrapes}) == 1
    # Several workers counted (a file each), and the previous run's file was cleared at start.
    assert len(worker_files) >= 2, worker_files
    assert "counter_999999.db" not in os.listdir(folder)
    assert not any(form_id in text for form_id in all_ids for text in scrapes)


def test_a_check_opened_at_the_desk_counts_once_on_the_desk_s_channel(client, world, scraper):
    walk_in = world.issue()
    before = scrape(client)
    retry = {"Idempotency-Key": "walk-in-metrics"}
    assert world.post("officer", "/api/v1/checks", {"form_id": walk_in["id"]}, headers=retry).status_code == 201
    assert world.post("officer", "/api/v1/checks", {"form_id": walk_in["id"]},
                      headers=retry).headers["Idempotent-Replayed"] == "true"
    assert world.post("officer", "/api/v1/checks", {"form_id": walk_in["id"]}).status_code == 200  # already open
    assert world.post("officer", f"/api/v1/forms/{walk_in['id']}/decision", {"outcome": "validated"}).status_code == 200
    after = scrape(client)

    def delta(**labels):
        return (value(after, "taxfree_verdicts_total", **labels)
                - value(before, "taxfree_verdicts_total", **labels))

    assert delta(exit_point="AMS", channel="desk", verdict="check_required") == 1
    assert delta(exit_point="AMS", channel="desk", verdict="validated") == 1
    assert delta(exit_point="AMS", channel="kiosk", verdict="check_required") == 0
