"""Every error is RFC 9457 problem details; nothing returns HTML or a trace."""
from __future__ import annotations

import pytest


def assert_problem(r, status):
    assert r.status_code == status
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert {"type", "title", "status", "detail", "instance", "code"} <= set(body)
    assert body["status"] == status
    assert "Traceback" not in r.get_data(as_text=True) and "<html" not in r.get_data(as_text=True).lower()
    return body


def test_an_unknown_path_is_a_404_problem(client):
    body = assert_problem(client.get("/api/v1/nowhere"), 404)
    assert body["instance"] == "/api/v1/nowhere" and body["title"] == "Not Found"


def test_a_wrong_method_is_a_405_problem_with_allow(client):
    r = client.delete("/api/v1/auth/token")
    assert_problem(r, 405)
    assert "POST" in r.headers["Allow"]


def test_malformed_json_is_a_400_problem(client):
    r = client.post("/api/v1/auth/token", data="{not json", content_type="application/json")
    assert_problem(r, 400)


@pytest.mark.parametrize("payload", [[], "text", 42, None])
def test_a_body_that_is_not_an_object_is_refused(client, payload):
    r = client.post("/api/v1/auth/token", json=payload)
    assert r.status_code in (400, 422)
    assert_problem(r, r.status_code)


def test_a_huge_body_is_a_413_problem(client):
    r = client.post("/api/v1/auth/token", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                    content_type="application/json")
    assert_problem(r, 413)


def test_field_errors_are_listed_per_field_on_422(client):
    body = assert_problem(client.post("/api/v1/auth/token", json={"username": ""}), 422)
    assert set(body["errors"]) == {"username", "password"}
    assert all(isinstance(m, list) and m for m in body["errors"].values())


def test_an_unexpected_failure_is_a_500_problem_without_details(app, client, caplog):
    number = "E" + "12345678"

    @app.get("/boom")
    def boom():
        raise RuntimeError(f"passport {number} leaked")

    body = assert_problem(client.get("/boom"), 500)
    assert "E12345678" not in body["detail"]
    assert "E12345678" not in caplog.text  # the message of an error is never logged
    assert "RuntimeError" in caplog.text


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_readiness_fails_as_a_503_problem_when_the_database_is_gone(tmp_path, monkeypatch):
    from api import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    app = create_app({"DATABASE_URL": "postgresql+psycopg://nobody:x@127.0.0.1:1/none"})
    assert_problem(app.test_client().get("/readyz"), 503)
    app.extensions["db_engine"].dispose()


def test_text_no_database_can_store_is_refused_with_422_not_a_crash(world):
    for bad in ("abc\x00def", "abc\ud800def"):
        r = world.client.post("/api/v1/auth/token", json={"username": bad, "password": "x"})
        body = assert_problem(r, 422)
        assert list(body["errors"]) == ["username"]


def test_a_nul_in_the_url_is_a_400_problem(world):
    assert_problem(world.client.get("/api/v1/forms/NL%00ABC", headers=world.auth("shop")), 400)
    assert_problem(world.client.get("/api/v1/forms", query_string={"cursor": "a\x00"},
                                    headers=world.auth("shop")), 400)


def test_a_mistyped_form_id_is_caught_by_its_check_character(world):
    form = world.issue("shop")
    typo = form["id"][:-1] + ("0" if form["id"][-1] != "0" else "1")
    body = assert_problem(world.get("shop", f"/api/v1/forms/{typo}"), 404)
    assert body["code"] == "form_not_found" and "typo" in body["detail"]
