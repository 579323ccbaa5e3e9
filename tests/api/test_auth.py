"""Who may call what: tokens, roles, devices."""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from sqlalchemy import delete

from api import auth, database, keys
from api.models import Device, User


def problem(r, status, code):
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == code
    return r.get_json()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_token_names_its_type_and_lifetime(world):
    r = world.client.post("/api/v1/auth/token", json={"username": "shop", "password": "correct-horse-battery"})
    body = r.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["role"] == "retailer" and claims["aud"] == "taxfree-api"


@pytest.mark.parametrize("username, password", [("shop", "wrong-password"), ("nobody", "correct-horse-battery")])
def test_a_wrong_username_or_password_gets_the_same_401(world, username, password):
    body = problem(world.client.post("/api/v1/auth/token", json={"username": username, "password": password}),
                   401, "invalid_credentials")
    assert body["detail"] == "Wrong username or password."


def test_no_token_is_401_with_a_bearer_challenge(world):
    r = world.client.get("/api/v1/forms")
    problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def _forge(app, claims, header, key):
    return jwt.encode(claims, key, algorithm=header.pop("alg"), headers=header)


def _claims(app, **overrides):
    now = datetime.now(timezone.utc)
    claims = {"iss": "taxfree-api", "aud": "taxfree-api", "sub": "user:1", "role": "admin",
              "iat": now, "exp": now + timedelta(minutes=5), "auth_time": int(now.timestamp()), "ver": 0}
    claims.update(overrides)
    return claims


def _unsigned(claims) -> str:
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data, default=str).encode()).rstrip(b"=").decode()
    claims = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    return f"{b64({'alg': 'none', 'typ': 'at+jwt'})}.{b64(claims)}."


def test_an_unsigned_token_is_refused(world, app):
    problem(world.client.get("/api/v1/forms", headers=bearer(_unsigned(_claims(app)))), 401, "unauthorized")


def test_an_hs256_token_keyed_with_the_public_key_is_refused(world, client):
    jwk = client.get("/.well-known/jwks.json").get_json()["keys"][0]
    token = jwt.encode(_claims(None), jwk["x"].encode(), algorithm="HS256",
                       headers={"kid": jwk["kid"], "typ": "at+jwt"})
    problem(client.get("/api/v1/forms", headers=bearer(token)), 401, "unauthorized")


def _real_key(app):
    with app.app_context():
        return app.extensions["keyring"].signing_key(database.session(), keys.ACCESS_TOKEN)


@pytest.mark.parametrize("overrides, detail", [
    ({"exp": datetime.now(timezone.utc) - timedelta(seconds=1)}, "expired"),
    ({"iss": "someone-else"}, "not valid"),
    ({"aud": "another-api"}, "not valid"),
])
def test_expired_or_foreign_tokens_signed_with_our_key_are_refused(world, app, overrides, detail):
    kid, key = _real_key(app)
    token = jwt.encode(_claims(app, **overrides), key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    body = problem(world.client.get("/api/v1/forms", headers=bearer(token)), 401, "unauthorized")
    assert detail in body["detail"]


def test_the_signing_setup_accepts_a_well_formed_token(world, app):
    # The forged-token tests above are only meaningful if this one passes.
    kid, key = _real_key(app)
    token = jwt.encode(_claims(app), key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    assert world.client.get("/api/v1/forms", headers=bearer(token)).status_code == 200


def test_a_token_is_verified_once_and_refused_from_the_moment_it_expires(world, app, monkeypatch):
    kid, key = _real_key(app)
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
    token = jwt.encode(_claims(app, exp=expires), key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    checked, decode = [], jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *args, **kwargs: checked.append(args[0]) or decode(*args, **kwargs))
    for _ in range(3):
        assert world.client.get("/api/v1/forms", headers=bearer(token)).status_code == 200
    assert checked == [token]  # its signature checked once, by the first request

    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    body = problem(world.client.get("/api/v1/forms", headers=bearer(token)), 401, "unauthorized")
    assert body["detail"] == "The access token has expired."


def test_the_tokens_a_worker_remembers_are_bounded(world, app, monkeypatch):
    monkeypatch.setattr(auth, "_VERIFIED_MAX", 3)
    kid, key = _real_key(app)
    for n in range(7):
        token = jwt.encode(_claims(app, jti=str(n)), key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
        assert world.client.get("/api/v1/forms", headers=bearer(token)).status_code == 200
        assert 1 <= len(app.extensions["verified_tokens"]) <= 3
    assert token in app.extensions["verified_tokens"]


def test_a_qr_payload_is_not_an_access_token(world):
    form = world.issue("shop")
    problem(world.client.get("/api/v1/forms", headers=bearer(form["qr_payload"])), 401, "unauthorized")


def test_a_deleted_users_token_stops_working(world, app):
    token = world.tokens["books"]
    assert world.client.get("/api/v1/forms", headers=bearer(token)).status_code == 200
    with app.app_context():
        session = database.session()
        session.execute(delete(User).where(User.username == "books"))
        session.commit()
    problem(world.client.get("/api/v1/forms", headers=bearer(token)), 401, "unauthorized")


def test_a_revoked_device_cannot_scan(world, app):
    form = world.issue("shop")
    with app.app_context():
        session = database.session()
        session.get(Device, world.ids["kiosk"]).revoked_at = datetime.now(timezone.utc)
        session.commit()
    problem(world.scan("kiosk", form["qr_payload"]), 401, "unauthorized")


def test_a_device_token_with_a_wrong_secret_is_refused(world):
    token = world.devices["kiosk"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = world.client.post("/api/v1/scans", json={"qr_payload": "x"}, headers=bearer(forged))
    problem(r, 401, "unauthorized")


@pytest.mark.parametrize("who, method, path, status", [
    ("shop", "post", "/api/v1/exit-points", 403),
    ("refunds", "get", "/api/v1/retailers", 403),
    ("officer", "post", "/api/v1/users", 403),
    ("kiosk", "get", "/api/v1/forms", 403),
    ("kiosk", "get", "/api/v1/checks", 403),
    ("shop", "get", "/api/v1/checks", 403),
    ("shop", "post", "/api/v1/scans", 403),
    ("officer", "post", "/api/v1/scans", 403),
    ("officer", "get", "/api/v1/exit-points", 200),
    ("officer", "get", "/api/v1/checks", 200),
    ("root", "get", "/api/v1/retailers", 200),
])
def test_each_role_reaches_only_its_endpoints(world, who, method, path, status):
    r = getattr(world.client, method)(path, json={} if method == "post" else None, headers=world.auth(who))
    assert r.status_code == status, r.get_json()


def test_an_unauthenticated_caller_learns_nothing_about_the_body_schema(world):
    r = world.client.post("/api/v1/forms", json={"nonsense": True})
    problem(r, 401, "unauthorized")


def test_a_device_token_is_shown_once_and_not_listed(world):
    r = world.post("root", "/api/v1/devices", {"name": "tablet 3", "kind": "tablet", "exit_point": "RTM"})
    body = r.get_json()
    assert r.status_code == 201 and body["token"].startswith("tfd_") and body["exit_point"] == "RTM"
    problem(world.post("root", "/api/v1/devices", {"name": "x", "kind": "kiosk", "exit_point": "XXX"}),
            422, "invalid_request")


def test_users_are_bound_to_their_retailer_or_intermediary(world):
    body = problem(world.post("root", "/api/v1/users", {"username": "clerk", "password": "long-enough-pw-42",
                                                         "role": "retailer"}), 422, "invalid_request")
    assert "retailer_id" in body["errors"]
    problem(world.post("root", "/api/v1/users", {"username": "shop", "password": "long-enough-pw-42",
                                                  "role": "officer"}), 409, "already_exists")


def test_password_guessing_is_stopped_with_429_and_retry_after(world, app, monkeypatch):
    from api.resources import auth as resource

    monkeypatch.setattr(resource, "utcnow", lambda: datetime(2026, 11, 28, 9, 30, 40, tzinfo=timezone.utc))
    for _ in range(app.config["FAILED_ATTEMPTS_FREE"]):
        r = world.client.post("/api/v1/auth/token", json={"username": "shop", "password": "guess"})
        assert r.status_code == 401
    r = world.client.post("/api/v1/auth/token", json={"username": "shop", "password": "correct-horse-battery"})
    body = problem(r, 429, "too_many_requests")
    assert r.headers["Retry-After"] == "1"
    assert "wait" in body["detail"]
    # Another account from the same address is not locked out.
    assert world.client.post("/api/v1/auth/token", json={
        "username": "books", "password": "correct-horse-battery"}).status_code == 200


def test_a_valid_token_is_refreshed_without_the_password(world):
    r = world.client.post("/api/v1/auth/refresh", headers=world.auth("officer"))
    assert r.status_code == 200 and r.get_json()["expires_in"] == 3600
    fresh = r.get_json()["access_token"]
    assert fresh != world.tokens["officer"]
    assert world.client.get("/api/v1/checks", headers=bearer(fresh)).status_code == 200
    problem(world.client.post("/api/v1/auth/refresh", headers=world.auth("kiosk")), 403, "forbidden")
    problem(world.client.post("/api/v1/auth/refresh"), 401, "unauthorized")
