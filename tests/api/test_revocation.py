"""Access that can be taken back: disabling a user, a new password or role,
and a session that ends however often its token is refreshed."""
from __future__ import annotations

from datetime import datetime, timezone

import jwt
from sqlalchemy import select

from api import database, keys
from api.models import Event, PortalSession, User
from api.services import users
from tests.builders import PASSWORD
from tests.portal.portal_support import portal_login

NEW_PASSWORD = "juniper-harbour-sextant-19"


def problem(r, status, code):
    assert r.status_code == status, r.get_json()
    assert r.get_json()["code"] == code, r.get_json()
    return r.get_json()


def user_id(app, username):
    with app.app_context():
        return database.session().scalar(select(User.id).where(User.username == username))


def forms_of(world, token):
    return world.client.get("/api/v1/forms", headers={"Authorization": f"Bearer {token}"})


def test_disabling_a_user_refuses_their_tokens_at_once_and_their_logins(app, world):
    token = world.tokens["shop"]
    assert forms_of(world, token).status_code == 200
    r = world.post("root", f"/api/v1/users/{user_id(app, 'shop')}/disable")
    assert r.status_code == 200 and r.get_json()["disabled_at"] is not None
    problem(forms_of(world, token), 401, "token_revoked")
    problem(world.client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {token}"}),
            401, "token_revoked")
    # A disabled user hears what a wrong password would say.
    problem(world.client.post("/api/v1/auth/token", json={"username": "shop", "password": PASSWORD}),
            401, "invalid_credentials")


def test_enabling_a_user_again_lets_them_log_in_but_old_tokens_stay_dead(app, world):
    token = world.tokens["shop"]
    shop = user_id(app, "shop")
    world.post("root", f"/api/v1/users/{shop}/disable")
    r = world.post("root", f"/api/v1/users/{shop}/enable")
    assert r.status_code == 200 and r.get_json()["disabled_at"] is None
    problem(forms_of(world, token), 401, "token_revoked")
    assert forms_of(world, world.login("shop")).status_code == 200


def test_a_password_reset_ends_every_token_and_the_old_password(app, world):
    token = world.tokens["officer"]
    r = world.client.put(f"/api/v1/users/{user_id(app, 'officer')}/password", json={"password": NEW_PASSWORD},
                         headers=world.auth("root"))
    assert r.status_code == 204
    problem(forms_of(world, token), 401, "token_revoked")
    problem(world.client.post("/api/v1/auth/token", json={"username": "officer", "password": PASSWORD}),
            401, "invalid_credentials")
    world.login("officer", NEW_PASSWORD)


def test_a_weak_new_password_is_refused(app, world):
    for weak in ("short-pw", "password1234", "qwertyuiop123", "officer-officer-1"):
        r = world.client.put(f"/api/v1/users/{user_id(app, 'officer')}/password", json={"password": weak},
                             headers=world.auth("root"))
        assert problem(r, 422, "weak_password")["errors"]["password"], weak
    assert forms_of(world, world.tokens["officer"]).status_code == 200


def test_only_an_admin_disables_users_and_not_themselves(app, world):
    shop = user_id(app, "shop")
    problem(world.post("officer", f"/api/v1/users/{shop}/disable"), 403, "forbidden")
    problem(world.post("shop", f"/api/v1/users/{shop}/disable"), 403, "forbidden")
    problem(world.post("root", f"/api/v1/users/{user_id(app, 'root')}/disable"), 409, "cannot_disable_yourself")
    problem(world.post("root", "/api/v1/users/999999/disable"), 404, "not_found")


def test_every_change_is_in_the_audit_trail_with_who_made_it(app, world):
    shop = user_id(app, "shop")
    world.post("root", f"/api/v1/users/{shop}/disable")
    world.post("root", f"/api/v1/users/{shop}/enable")
    with app.app_context():
        events = database.session().scalars(select(Event).where(Event.type.in_(("user.disabled", "user.enabled")))
                                            .order_by(Event.id)).all()
        assert [(e.type, e.data["user"]) for e in events] == [("user.disabled", "shop"), ("user.enabled", "shop")]
        assert {e.actor for e in events} == {f"user:{user_id(app, 'root')}"}


def test_a_new_role_ends_the_tokens_issued_for_the_old_one(app, world):
    token = world.tokens["officer2"]
    with app.app_context():
        session = database.session()
        users.set_role(session, session.get(User, user_id(app, "officer2")), "admin", "cli",
                       datetime.now(timezone.utc))
        session.commit()
    problem(forms_of(world, token), 401, "token_revoked")


def test_a_token_without_a_version_is_refused(app, world):
    claims = jwt.decode(world.tokens["shop"], options={"verify_signature": False})
    header = jwt.get_unverified_header(world.tokens["shop"])
    del claims["ver"]
    with app.app_context():
        kid, key = app.extensions["keyring"].signing_key(database.session(), keys.ACCESS_TOKEN)
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": header["typ"]})
    problem(forms_of(world, token), 401, "unauthorized")


# --- the session's end -------------------------------------------------------------

def _token(app, username, auth_time):
    from api import auth

    with app.test_request_context():
        session = database.session()
        return auth.issue_access_token(session.scalar(select(User).where(User.username == username)),
                                       auth_time=auth_time)


def test_a_refresh_keeps_the_original_login_time_and_never_passes_the_session_end(app, world):
    limit = app.config["ACCESS_SESSION_MAX_SECONDS"]
    logged_in = int(datetime.now(timezone.utc).timestamp()) - limit + 120
    token, ttl = _token(app, "officer", logged_in)
    assert ttl <= 120
    r = world.client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["expires_in"] <= 120
    fresh = jwt.decode(r.get_json()["access_token"], options={"verify_signature": False})
    assert fresh["auth_time"] == logged_in and fresh["exp"] <= logged_in + limit


def test_a_refresh_after_the_session_end_is_refused(app, world):
    # A token that is still valid by its own exp but whose login is older
    # than the session may last (as a stolen token would be kept alive).
    claims = jwt.decode(world.tokens["officer"], options={"verify_signature": False})
    claims["auth_time"] -= app.config["ACCESS_SESSION_MAX_SECONDS"] + 1
    with app.app_context():
        kid, key = app.extensions["keyring"].signing_key(database.session(), keys.ACCESS_TOKEN)
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    problem(world.client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {token}"}),
            401, "session_expired")


def test_a_login_starts_a_new_session(app, world):
    before = int(datetime.now(timezone.utc).timestamp())
    claims = jwt.decode(world.login("officer"), options={"verify_signature": False})
    assert claims["auth_time"] >= before and claims["ver"] == 0


# --- web sessions ------------------------------------------------------------------

def _sessions_of(app, username):
    with app.app_context():
        return database.session().scalars(
            select(PortalSession).where(PortalSession.user_id == user_id(app, username))).all()


def test_disabling_a_user_ends_their_portal_sessions(app, world, client):
    assert portal_login(client, "shop").status_code == 302
    assert client.get("/portal/forms").status_code == 200
    assert _sessions_of(app, "shop")
    world.post("root", f"/api/v1/users/{user_id(app, 'shop')}/disable")
    assert not _sessions_of(app, "shop")
    r = client.get("/portal/forms")
    assert r.status_code == 302 and r.headers["Location"].startswith("/portal/login")


def test_a_password_change_ends_a_portal_session_even_if_its_row_survived(app, world, client):
    assert portal_login(client, "shop").status_code == 302
    with app.app_context():
        session = database.session()
        shop = session.get(User, user_id(app, "shop"))
        shop.token_version += 1  # as set_password does, without deleting the session rows
        session.commit()
    r = client.get("/portal/forms")
    assert r.status_code == 302 and r.headers["Location"].startswith("/portal/login")


# --- the operator's commands -------------------------------------------------------

def test_disable_enable_and_set_password_commands(app, world, runner):
    token = world.tokens["shop"]
    assert runner.invoke(args=["disable-user", "shop"]).exit_code == 0
    problem(forms_of(world, token), 401, "token_revoked")
    problem(world.client.post("/api/v1/auth/token", json={"username": "shop", "password": PASSWORD}),
            401, "invalid_credentials")
    assert runner.invoke(args=["enable-user", "shop"]).exit_code == 0
    world.login("shop")
    # From standard input, or asked for twice; never an argument.
    done = runner.invoke(args=["set-password", "shop", "--stdin"], input=NEW_PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert NEW_PASSWORD not in done.output
    world.login("shop", NEW_PASSWORD)
    prompted = runner.invoke(args=["set-password", "shop"], input=f"{PASSWORD}x\n{PASSWORD}x\n")
    assert prompted.exit_code == 0, prompted.output
    world.login("shop", PASSWORD + "x")
    assert runner.invoke(args=["set-password", "shop", "--password", NEW_PASSWORD]).exit_code != 0
    weak = runner.invoke(args=["set-password", "shop", "--stdin"], input="password1234\n")
    assert weak.exit_code != 0 and "common" in weak.output
    assert runner.invoke(args=["disable-user", "nobody"]).exit_code != 0


def test_create_user_refuses_short_and_common_passwords(runner):
    for weak in ("short", "password1234", "iloveyou1234"):
        r = runner.invoke(args=["create-user", "clerk", "--role", "officer", "--password", weak])
        assert r.exit_code != 0 and "password refused" in r.output, weak
    r = runner.invoke(args=["create-user", "clerk", "--role", "officer", "--password-stdin"],
                      input=NEW_PASSWORD + "\n")
    assert r.exit_code == 0, r.output


def test_the_admin_api_refuses_short_and_common_passwords_for_new_users(world):
    for weak in ("short-pw-1", "password1234", "1q2w3e4r5t6y"):
        r = world.post("root", "/api/v1/users", {"username": "clerk", "password": weak, "role": "officer"})
        assert problem(r, 422, "invalid_request")["errors"]["password"], weak
    assert world.post("root", "/api/v1/users", {"username": "clerk", "password": NEW_PASSWORD,
                                                "role": "officer"}).status_code == 201


def test_a_user_id_beyond_what_the_database_stores_is_not_found(world):
    for path in ("disable", "enable"):
        problem(world.post("root", f"/api/v1/users/{2**31}/{path}"), 404, "not_found")
    r = world.client.put(f"/api/v1/users/{10**25}/password", json={"password": NEW_PASSWORD},
                         headers=world.auth("root"))
    problem(r, 404, "not_found")
