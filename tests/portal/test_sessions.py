"""Logging in and out, server-side sessions, CSRF and security headers."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal_support import CSRF, csrf_token, portal_login

from api import database
from api.models import PortalSession, utcnow
from api.portal import sessions

COOKIE = "__Host-portal"


def _rows(app) -> list[PortalSession]:
    with app.app_context():
        return list(database.session().scalars(select(PortalSession)))


def test_login_sets_a_secure_httponly_lax_cookie_and_the_database_keeps_only_its_hash(app, client, world):
    response = portal_login(client, "shop")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/forms"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age" not in cookie and "Expires" not in cookie  # gone when the browser closes
    token = client.get_cookie(COOKIE).value
    rows = _rows(app)
    assert [r.id for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert rows[0].user_id is not None
    assert token not in str(rows[0].data)


def test_logging_in_gives_a_new_session_id(client, world):
    client.get("/portal/login")
    before = client.get_cookie(COOKIE).value
    portal_login(client, "shop")
    assert client.get_cookie(COOKIE).value != before


def test_wrong_password_and_unknown_user_get_the_same_answer(client, world):
    wrong = portal_login(client, "shop", "not-the-password")
    unknown = portal_login(client, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password." in wrong.get_data(as_text=True)
    assert "Wrong username or password." in unknown.get_data(as_text=True)


def test_login_attempts_are_limited_per_username(app, client, world, runner, monkeypatch):
    from api.portal import retailer

    runner.invoke(args=["create-user", "clerk", "--role", "retailer", "--password", "correct-horse-battery",
                        "--retailer", "NL859559001B01"])
    app.config["FAILED_ATTEMPTS_FREE"] = 3
    moment = utcnow()  # every attempt at one moment: no wait has passed
    monkeypatch.setattr(retailer, "_now", lambda: moment)
    statuses = [portal_login(client, "clerk", "guess").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert portal_login(client, "clerk").status_code == 429  # even with the right password, for now


def test_an_intermediary_cannot_use_the_portal(client, world):
    response = portal_login(client, "refunds")
    assert response.status_code == 403
    assert "Intermediaries register forms through the API" in response.get_data(as_text=True)


def test_an_officer_lands_on_the_dashboard_and_cannot_open_the_shop_pages(client, world):
    response = portal_login(client, "officer")
    assert response.headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    assert client.get("/portal/forms").status_code == 403


def test_a_retailer_cannot_open_the_dashboard(shop):
    response = shop.get("/dashboard")
    assert response.status_code == 403
    assert "cannot open this page" in response.get_data(as_text=True)


def test_pages_need_a_login_and_come_back_after_it(client, world):
    response = client.get("/portal/forms?status=issued")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login?next=")
    token = csrf_token(client, response.headers["Location"])
    done = client.post("/portal/login", data={"csrf_token": token, "username": "shop", "password": "correct-horse-battery",
                                             "next": "/portal/forms?status=issued"})
    assert done.headers["Location"] == "/portal/forms?status=issued"


# Each of these is "another site" to some browser once it has dropped tabs
# and newlines, turned "\\" into "/", or decoded the address; none may be
# where a login sends the browser.
OFF_SITE = [
    "//evil.example/x", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example", " //evil.example",
    "/%09/evil.example", "/%5Cevil.example", "/%5cevil.example", "/%2F/evil.example", "/%2f%2fevil.example",
    "%2F%2Fevil.example", "https:evil.example", "https:/evil.example", "http:\\\\evil.example",
    "javascript:alert(1)", "/portal/../\\evil.example", "//evil.example/portal/forms",
    "/\u3002evil.example", "///evil.example", "/portal/%2e%2e/%2e%2e//evil.example", "evil.example",
    "/%0d%0aLocation:%20https://evil.example",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_redirects_to_another_site(client, world, target):
    # Through the page a link would open (next in the address, kept in the
    # form), and posted directly.
    page = client.get("/portal/login", query_string={"next": target})
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    assert 'name="next"' not in page.get_data(as_text=True)
    response = client.post("/portal/login", query_string={"next": target},
                           data={"csrf_token": token, "username": "shop",
                                 "password": "correct-horse-battery", "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/portal/forms", target
    # Logged in already: the login page sends the user on, home again.
    again = client.get("/portal/login", query_string={"next": target})
    assert again.headers["Location"] == "/portal/forms", target


@pytest.mark.parametrize("target", ["/portal/forms?status=issued", "/dashboard?exit_point=AMS",
                                    "/portal/forms/NL0000007"])
def test_login_returns_to_a_page_of_the_site(client, world, target):
    token = csrf_token(client, "/portal/login")
    response = client.post("/portal/login", data={"csrf_token": token, "username": "officer"
                                                  if target.startswith("/dashboard") else "shop",
                                                  "password": "correct-horse-battery", "next": target})
    assert response.headers["Location"] == target


def test_logout_deletes_the_session_row_and_the_old_cookie_opens_nothing(app, client, world):
    portal_login(client, "shop")
    token = client.get_cookie(COOKIE).value
    response = client.post("/portal/logout", data={"csrf_token": csrf_token(client, "/portal/forms")})
    assert response.status_code == 302
    assert all(r.id != hashlib.sha256(token.encode()).hexdigest() for r in _rows(app))
    assert all(r.user_id is None for r in _rows(app))
    client.set_cookie(COOKIE, token)  # a copy of the old cookie
    assert client.get("/portal/forms").status_code == 302


def test_logout_needs_the_csrf_token(client, world):
    portal_login(client, "shop")
    assert client.post("/portal/logout").status_code == 400
    assert client.get("/portal/forms").status_code == 200


def test_a_session_ends_after_the_idle_timeout(app, client, world, monkeypatch):
    portal_login(client, "shop")
    assert client.get("/portal/forms").status_code == 200
    later = utcnow() + timedelta(seconds=app.config["PORTAL_SESSION_IDLE_SECONDS"] + 1)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    response = client.get("/portal/forms")
    assert response.status_code == 302 and "/portal/login" in response.headers["Location"]
    assert "Your session has ended" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_activity_keeps_a_session_alive_until_its_maximum_lifetime(app, client, world, monkeypatch):
    app.config.update(PORTAL_SESSION_IDLE_SECONDS=600, PORTAL_SESSION_MAX_SECONDS=1800)
    start = utcnow()
    portal_login(client, "shop")
    for minutes in (9, 18, 27):  # each request within the idle timeout of the last
        monkeypatch.setattr(sessions, "utcnow", lambda m=minutes: start + timedelta(minutes=m))
        assert client.get("/portal/forms").status_code == 200, minutes
    monkeypatch.setattr(sessions, "utcnow", lambda: start + timedelta(minutes=31))
    assert client.get("/portal/forms").status_code == 302


def test_the_session_is_shared_by_every_worker(app, client, world):
    """Another app instance (a second gunicorn worker) on the same database
    knows the session."""
    from api import create_app

    portal_login(client, "shop")
    other = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"],
                        "SECRET_KEY": app.config["SECRET_KEY"]})
    try:
        second = other.test_client()
        second.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
        assert second.get("/portal/forms").status_code == 200
    finally:
        other.extensions["db_engine"].dispose()


def test_api_requests_neither_read_nor_create_sessions(app, client, world):
    before = len(_rows(app))
    response = client.get("/healthz")
    assert "Set-Cookie" not in response.headers
    world.issue()
    assert len(_rows(app)) == before


def test_every_state_changing_page_refuses_a_post_without_the_csrf_token(shop, world):
    form = world.issue()
    for path in ("/portal/forms/new", f"/portal/forms/{form['id']}/cancel", f"/portal/forms/{form['id']}/refund",
                 "/portal/logout", "/portal/login", "/status"):
        response = shop.post(path, data={"version": "x"})
        assert response.status_code == 400, path
        assert response.mimetype == "text/html", path
    assert world.get("shop", f"/api/v1/forms/{form['id']}").get_json()["status"] == "issued"


def test_a_token_from_another_session_is_refused(client, world, app):
    other = app.test_client()
    stolen = csrf_token(other, "/portal/login")
    response = client.post("/portal/login", data={"csrf_token": stolen, "username": "shop",
                                                  "password": "correct-horse-battery"})
    assert response.status_code == 400


def test_pages_send_security_headers(shop, world):
    form = world.issue()
    for path in ("/portal/forms", f"/portal/forms/{form['id']}", f"/portal/forms/{form['id']}/print",
                 "/portal/forms/new", "/portal/forms.csv", "/status", "/portal/login", "/portal/forms/NL0000000/print"):
        response = shop.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Cache-Control"] == "no-store", path
    css = shop.get("/portal/static/portal.css")
    assert css.status_code == 200 and "no-store" not in css.headers.get("Cache-Control", "")
    css.close()


def test_a_missing_page_under_the_portal_is_an_html_page(shop):
    response = shop.get("/portal/forms/NL0000000")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_expired_sessions_are_swept_when_new_ones_start(app, client, world, monkeypatch):
    portal_login(client, "shop")
    later = utcnow() + timedelta(seconds=app.config["PORTAL_SESSION_MAX_SECONDS"] + 5)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    app.test_client().get("/portal/login")  # a new visitor's session
    with app.app_context():
        count = database.session().scalar(select(func.count()).select_from(PortalSession))
    assert count == 1


def test_an_unknown_address_under_the_pages_is_a_page_and_under_the_api_a_problem(client):
    page = client.get("/portal/no-such-page?lang=nl")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Op dit adres staat geen pagina." in page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"]
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"
    assert client.delete("/status").mimetype == "text/html"
    assert client.delete("/api/v1/forms").mimetype == "application/problem+json"
