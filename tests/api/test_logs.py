"""Structured logs: one JSON line per request and per background job, with
a request id the client can follow, and never a traveller's passport
number, name or date of birth, whatever the request carried."""
from __future__ import annotations

import json
import logging
import re
from datetime import date, timedelta

import pytest
import requests

from api.observability import logs
from tests.builders import item, traveller
from tests.servers import free_port, gunicorn_command, server_environment, serving


def json_lines(text: str, event: str) -> list[dict]:
    """The JSON log lines of one event in what the app wrote to stderr."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            if data.get("event") == event:
                found.append(data)
    return found


def request_lines(capsys) -> list[dict]:
    return json_lines(capsys.readouterr().err, "request")


def job_lines(err: str, job: str) -> list[dict]:
    return [line for line in json_lines(err, "job") if line["job"] == job]


def test_each_request_is_one_line_with_its_route_status_caller_and_request_id(world, client, capsys):
    form = world.issue()
    capsys.readouterr()
    r = world.post("kiosk", "/api/v1/scans", {"qr_payload": form["qr_payload"]},
                   headers={"X-Request-ID": "kiosk-7f3a.0042"})
    assert r.headers["X-Request-ID"] == "kiosk-7f3a.0042"
    [line] = request_lines(capsys)
    assert line["logger"] == "api.requests" and line["request_id"] == "kiosk-7f3a.0042"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/api/v1/scans", 200)
    assert (line["principal_kind"], line["principal_id"], line["exit_point"]) == ("device", world.ids["kiosk"], "AMS")
    assert line["duration_ms"] >= 0 and line["level"] == "info" and line["timestamp"].endswith("Z")

    world.get("shop", f"/api/v1/forms/{form['id']}")
    [line] = request_lines(capsys)
    assert line["route"] == "/api/v1/forms/<form_id>" and form["id"] not in json.dumps(line)
    assert line["principal_kind"] == "user" and line["exit_point"] is None


@pytest.mark.parametrize("given", ["", "has spaces in it", "x" * 129, "<script>", "id;Injected=1", "-leading", "ünïcode-id"])
def test_a_malformed_request_id_is_replaced_by_a_new_one(client, capsys, given):
    r = client.get("/api/v1/forms/NL0000000", headers={"X-Request-ID": given})
    assert r.status_code == 401 and r.content_type == "application/problem+json"
    assert re.fullmatch(r"[0-9a-f]{22}", r.headers["X-Request-ID"])
    [line] = request_lines(capsys)
    assert line["request_id"] == r.headers["X-Request-ID"] and line["status"] == 401


def test_an_address_that_matches_no_route_is_logged_as_unmatched(client, capsys):
    r = client.get("/api/v1/forms/NL0000000/somewhere/E12345678")
    assert r.status_code == 404 and "X-Request-ID" in r.headers
    [line] = request_lines(capsys)
    assert line["route"] == "unmatched" and "E12345678" not in json.dumps(line)


def test_the_development_servers_request_lines_lose_their_query_string(world, live_server, caplog):
    caplog.set_level(logging.INFO)
    form = world.issue()
    # A query string a client sent anyway (the API takes names in bodies).
    r = requests.get(f"{live_server}/api/v1/forms/{form['id']}", params={"last_name": "Chen"},
                     headers=world.auth("shop"), timeout=10)
    assert r.status_code == 200
    werkzeug = [rec.getMessage() for rec in caplog.records if rec.name == "werkzeug"]
    assert any(f"GET /api/v1/forms/{form['id']} HTTP/1.1" in m for m in werkzeug), werkzeug
    assert not any("Chen" in m or "last_name" in m for m in werkzeug)


def test_background_jobs_write_one_line_each(world, runner, app):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    assert world.post("shop", "/api/v1/webhooks", {"url": f"http://127.0.0.1:{free_port()}/hook",
                                                   "events": ["form.validated"]}).status_code == 201
    world.scan("kiosk", world.issue()["qr_payload"])
    overdue = world.issue()
    from api import database
    from api.models import Form

    with app.app_context():
        session = database.session()
        session.get(Form, overdue["id"]).export_deadline = date.today() - timedelta(days=1)
        session.commit()
    err = ""
    for command in (["expire-forms"], ["purge-personal-data"], ["verify-audit"], ["deliver-webhooks"]):
        result = runner.invoke(args=command)  # the runner captures the command's stdout and stderr
        assert result.exit_code == 0, result.output
        err += result.stderr
    [expired] = job_lines(err, "expire-forms")
    assert expired["outcome"] == "ok" and expired["expired"] == 1 and expired["duration_ms"] >= 0
    [purged] = job_lines(err, "purge-personal-data")
    assert purged["outcome"] == "ok" and purged["forms"] == 0 and purged["retention_days"] == 365
    [verified] = job_lines(err, "verify-audit")
    assert verified["intact"] is True and verified["links"] >= 3
    [delivered] = job_lines(err, "deliver-webhooks")
    assert (delivered["claimed"], delivered["retrying"]) == (1, 1)  # nobody listens at the receiver
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["job_id"]) for line in (expired, purged, verified, delivered))


def test_a_job_that_fails_says_so_without_the_exceptions_message(capsys):
    with pytest.raises(ValueError):
        with logs.job("verify-audit") as line:
            line["links"] = 3
            raise ValueError("Chen, E12345678")
    err = capsys.readouterr().err
    [failed] = job_lines(err, "verify-audit")
    assert (failed["outcome"], failed["error"], failed["links"], failed["level"]) == ("error", "ValueError", 3, "error")
    assert "Chen" not in err


def test_request_lines_follow_the_level_of_their_logger(client, capsys):
    quiet = logging.getLogger("api.requests")
    quiet.setLevel(logging.WARNING)
    try:
        client.get("/healthz")
    finally:
        quiet.setLevel(logging.NOTSET)
    assert request_lines(capsys) == []
    client.get("/healthz")
    assert len(request_lines(capsys)) == 1


# --- no personal data in any log line, whatever the requests carried ----------------------

# Test travellers whose data would stand out anywhere in a log.
TRAVELLERS = [
    traveller(first_name="Anneliese", last_name="Quackenbush", passport_number="QX7845123",
              passport_country="US", nationality="US", residence_country="US", date_of_birth="1977-06-21"),
    traveller(first_name="Tiago", last_name="Worthingtonvale", passport_number="PT99887766",
              passport_country="BR", nationality="BR", residence_country="BR", date_of_birth="1969-02-03"),
]
PERSONAL = [value for t in TRAVELLERS for value in (
    t["first_name"], t["last_name"], t["passport_number"], t["date_of_birth"], t["date_of_birth"].replace("-", ""))]
PORTAL = "/portal"


def _csrf(http: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', http.get(url, timeout=10).text).group(1)


def run_scenarios(base: str, world) -> int:
    """Everything a day brings, over HTTP: forms issued for the test
    travellers (and refused with bad input), scans, passport scans and
    look-ups, decisions, status look-ups right and wrong, portal pages and
    searches. Returns the number of requests made."""
    made = 0

    def call(method, path, who=None, **kw):
        nonlocal made
        made += 1
        headers = {**(world.auth(who) if who else {}), **kw.pop("headers", {})}
        return requests.request(method, base + path, headers=headers, timeout=30, **kw)

    issued = []
    for n, person in enumerate(TRAVELLERS):
        for goods in (item(), item(125000, category="watches", serial_number=f"SN-{n}")):
            body = {"invoice_number": f"LOG-{base[-5:]}-{n}-{goods['category']}",
                    "purchase_date": (date.today() - timedelta(days=1)).isoformat(),
                    "traveller": person, "items": [goods]}
            r = call("POST", "/api/v1/forms", "shop", json=body)
            assert r.status_code == 201, r.text
            issued.append(r.json())
        # Refused, with the traveller's data in the body: 422s.
        bad = call("POST", "/api/v1/forms", "shop", json={**body, "invoice_number": "LOG-BAD",
                   "traveller": {**person, "residence_country": "DE"}})
        assert bad.status_code == 422
        assert call("POST", "/api/v1/forms", "shop", json={**body, "traveller": {
            **person, "passport_number": person["passport_number"].lower() + "!"}}).status_code == 422
        assert call("POST", "/api/v1/forms/batch", "shop", json={"forms": [
            {**body, "invoice_number": "LOG-BATCH-" + person["last_name"]}]}).status_code in (200, 207)
    for form in issued:
        assert call("POST", "/api/v1/scans", "kiosk", json={"qr_payload": form["qr_payload"]}).status_code == 200
        assert call("GET", f"/api/v1/forms/{form['id']}", "shop").status_code == 200
        assert call("POST", f"/api/v1/status/{form['id']}", json={"last_name": form["traveller"]["last_name"]}
                    ).status_code == 200
        assert call("POST", f"/api/v1/status/{form['id']}", json={"last_name": "Quackenbosch"}).status_code == 404
    for person in TRAVELLERS:
        passport = {"passport_number": person["passport_number"], "passport_country": person["passport_country"]}
        assert call("POST", "/api/v1/scans/passport", "rtm-kiosk", json=passport).status_code == 200
        assert call("POST", "/api/v1/forms/lookup", "officer", json=passport).status_code == 200
        assert call("POST", "/api/v1/scans/passport", "kiosk", json={**passport, "passport_country": "XX"}
                    ).status_code == 422
    waiting = [f for f in issued if f["items"][0]["category"] == "watches"]
    # The passports read in Rotterdam took the watches' checks to its desk.
    assert call("POST", "/api/v1/duty", "officer", json={"exit_point": "RTM"}).status_code == 201
    assert call("GET", "/api/v1/checks?exit_point=RTM", "officer").status_code == 200
    assert call("POST", f"/api/v1/forms/{waiting[0]['id']}/decision", "officer",
                json={"outcome": "rejected", "reason_code": "other", "note": "Quackenbush showed no watch"}
                ).status_code == 200
    assert call("POST", f"/api/v1/forms/{waiting[1]['id']}/decision", "officer",
                json={"outcome": "validated", "lines": [{"line": 1, "present": True}]}).status_code == 200
    # The web pages: the status page, and the portal with a search for a name.
    with requests.Session() as http:
        made += 4
        token = _csrf(http, base + "/status")
        http.post(base + "/status", data={"csrf_token": token, "form_id": issued[0]["id"],
                                          "last_name": "Quackenbush"}, timeout=10)
        token = _csrf(http, base + PORTAL + "/login")
        assert http.post(base + PORTAL + "/login", data={"csrf_token": token, "username": "shop",
                                                         "password": world.password}, timeout=10).ok
        for path in ("/forms?q=Quackenbush", f"/forms/{issued[0]['id']}", "/forms/new",
                     "/forms.csv?q=Worthingtonvale"):
            made += 1
            assert http.get(base + PORTAL + path, timeout=10).status_code == 200, path
        made += 2
        token = _csrf(http, base + PORTAL + "/forms/new")
        person = TRAVELLERS[1]
        page = http.post(base + PORTAL + "/forms/new", timeout=10, data={
            "csrf_token": token, "op": "issue", "invoice_number": "LOG-PORTAL",
            "purchase_date": "not a date", **{f"traveller.{k}": v for k, v in person.items() if v},
            "items.0.description": "Scarf", "items.0.category": "clothing", "items.0.quantity": "1",
            "items.0.price": "80,00", "items.0.vat_rate": "21"})
        assert page.status_code in (200, 422)
    return made


def _personal_data_in(text: str) -> list[str]:
    return [value for value in PERSONAL if value.lower() in text.lower()]


@pytest.fixture
def password_world(world):
    from tests.builders import PASSWORD

    world.password = PASSWORD
    return world


def test_a_days_requests_through_gunicorn_log_no_passport_number_name_or_date_of_birth(
        app, password_world, database_url, tmp_path, figures):
    world = password_world
    port = free_port()
    output = tmp_path / "gunicorn.log"
    env = {**server_environment(app, database_url, tmp_path / "instance"), "PORTAL_COOKIE_SECURE": "0"}
    # The access log switched on too, as an operator might: its format
    # (gunicorn.conf.py) has the path without the query string.
    command = gunicorn_command(port, workers=2) + ["--access-logfile", "-"]
    with serving(command, port, env, ready="/readyz", output=output) as url:
        made = run_scenarios(url, world)
    text = output.read_text()
    lines = [line for line in text.splitlines() if line.startswith("{")]
    request_lines = [json.loads(line) for line in lines if '"event": "request"' in line]
    access_lines = [line for line in text.splitlines() if '"GET /' in line or '"POST /' in line]
    figures(requests=made, request_log_lines=len(request_lines), access_log_lines=len(access_lines),
            personal_data_found=len(_personal_data_in(text)))
    assert len(request_lines) >= made - 5  # every request was logged ...
    assert {"route", "status", "duration_ms", "request_id", "principal_kind", "timestamp"} <= set(request_lines[0])
    # New request ids are unique, across both workers too.
    assert len({line["request_id"] for line in request_lines}) == len(request_lines)
    assert any(line["route"] == "/api/v1/status/<form_id>" and line["status"] == 404 for line in request_lines)
    assert len(access_lines) >= made - 5
    assert _personal_data_in(text) == []  # ... and none of it names a traveller
    assert "last_name" not in text and "q=" not in text


def test_a_days_requests_through_the_development_server_log_no_personal_data(
        app, password_world, live_server, caplog, capsys, figures):
    app.config["PORTAL_COOKIE_SECURE"] = False
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()
    made = run_scenarios(live_server, password_world)
    err = capsys.readouterr().err  # the app's own JSON lines
    # The server's records; urllib3's are this test's own HTTP client talking.
    server = [r for r in caplog.records if not r.name.startswith("urllib3")]
    rendered = "\n".join([err] + [caplog.handler.format(r) for r in server] + [str(r.msg) for r in server])
    figures(requests=made, log_records=len(server), request_lines=len(json_lines(err, "request")),
            personal_data_found=len(_personal_data_in(rendered)))
    assert len(json_lines(err, "request")) >= made - 5
    assert sum(1 for r in server if r.name == "werkzeug") >= made - 5
    assert _personal_data_in(rendered) == []
