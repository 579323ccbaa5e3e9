"""Signing keys: QR keys and access-token keys kept apart and rotated apart;
a QR key verifies until the forms it signed are past their deadline, an
access-token key for the token lifetime; the JWKS publishes exactly the
keys that verify, and kiosks holding it tell the two kinds apart."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import jwt
from sqlalchemy import select, update

from api import database, keys
from api.models import Form, SigningKey, utcnow
from shared import qrtoken, rules

ACCESS_TOKEN_TTL = 3600


def rotate(runner, purpose: str) -> str:
    result = runner.invoke(args=["rotate-keys", "--purpose", purpose])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[0].removeprefix("New signing key ").removesuffix(".")


def jwks(world) -> list[dict]:
    r = world.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return r.get_json()["keys"]


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def key_row(app, kid: str) -> SigningKey:
    with app.app_context():
        return database.session().get(SigningKey, kid)


def let_time_pass_for(app, kid: str) -> None:
    """As if the moment ``kid`` stops verifying had come."""
    with app.app_context():
        session = database.session()
        session.execute(update(SigningKey).where(SigningKey.kid == kid)
                        .values(verifies_until=utcnow() - timedelta(seconds=1)))
        session.commit()


def scan_verdict(world, payload) -> tuple[str, str | None]:
    r = world.scan("kiosk", payload)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["verdict"], r.get_json()["reason_code"]


def access_claims(user_id: int = 1) -> dict:
    now = datetime.now(timezone.utc)
    return {"iss": "taxfree-api", "aud": "taxfree-api", "sub": f"user:{user_id}", "role": "admin",
            "iat": now, "exp": now + timedelta(minutes=5), "auth_time": int(now.timestamp()), "ver": 0}


# --- QR keys ------------------------------------------------------------------------

def test_a_qr_key_rotated_out_verifies_until_the_last_deadline_of_its_forms_has_passed(app, world, runner):
    form = world.issue()
    first = kid_of(form["qr_payload"])
    # One of its forms has a later deadline than any form bought today could.
    late = date.today() + timedelta(days=200)
    with app.app_context():
        session = database.session()
        session.execute(update(Form).where(Form.id == form["id"]).values(export_deadline=late))
        session.commit()

    second = rotate(runner, "qr")
    rotate(runner, "qr")

    row = key_row(app, first)
    assert row.private_key is None  # it signs no more: its private half is gone
    assert row.verifies_until == keys.qr_needed_until(late)
    assert row.verifies_until > datetime.combine(late, datetime.min.time(), timezone.utc) + timedelta(days=14)
    assert first in {k["kid"] for k in jwks(world)}
    assert scan_verdict(world, form["qr_payload"]) == ("validated", None)

    let_time_pass_for(app, first)
    app.extensions["keyring"].invalidate()

    assert first not in {k["kid"] for k in jwks(world)}
    assert kid_of(world.issue()["qr_payload"]) not in (first, second)
    assert scan_verdict(world, form["qr_payload"]) == ("refused", "unknown_key")


def test_a_qr_key_without_forms_still_covers_forms_bought_today(app, world, runner):
    kid = rotate(runner, "qr")
    rotate(runner, "qr")

    # Other workers may sign with it for a moment after the rotation: a
    # purchase of today (tomorrow in Amsterdam at worst) is covered.
    ruleset = app.config["RULESET"]
    latest = rules.export_deadline(rules.local_today(utcnow() + timedelta(seconds=30), ruleset.timezone),
                                   ruleset.export_months)
    assert key_row(app, kid).verifies_until == keys.qr_needed_until(latest)


def test_forms_record_the_key_that_signed_them(app, world, runner):
    first = world.issue()
    rotate(runner, "qr")
    second = world.issue()
    with app.app_context():
        recorded = dict(database.session().execute(select(Form.id, Form.qr_kid)).all())
    assert recorded == {first["id"]: kid_of(first["qr_payload"]), second["id"]: kid_of(second["qr_payload"])}
    assert kid_of(first["qr_payload"]) != kid_of(second["qr_payload"])


# --- access-token keys ------------------------------------------------------------------

def test_an_access_token_key_rotated_out_verifies_for_the_token_lifetime_only(app, world, runner):
    token = world.tokens["shop"]
    first = kid_of(token)
    assert first.startswith("at-")
    qr_before = kid_of(world.issue()["qr_payload"])
    before = utcnow()

    rotate(runner, "access-token")
    rotate(runner, "access-token")

    row = key_row(app, first)
    assert row.private_key is None
    lifetime = timedelta(seconds=keys.CACHE_SECONDS + ACCESS_TOKEN_TTL)
    assert before + lifetime <= row.verifies_until <= utcnow() + lifetime
    assert world.get("shop", "/api/v1/forms").status_code == 200  # still within its lifetime
    assert kid_of(world.login("books")) not in (first, qr_before)
    assert kid_of(world.issue()["qr_payload"]) == qr_before  # QR signing is left alone

    let_time_pass_for(app, first)
    app.extensions["keyring"].invalidate()

    r = world.client.get("/api/v1/forms", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "unknown key" in r.get_json()["detail"]
    assert first not in {k["kid"] for k in jwks(world)}


def test_an_access_token_signed_with_a_qr_key_is_refused(app, world):
    with app.app_context():
        kid, qr_key = app.extensions["keyring"].signing_key(database.session(), keys.QR)
        at_kid, at_key = app.extensions["keyring"].signing_key(database.session(), keys.ACCESS_TOKEN)
    forged = jwt.encode(access_claims(), qr_key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    # ... and with the QR key under the access-token key's name.
    renamed = jwt.encode(access_claims(), qr_key, algorithm="EdDSA", headers={"kid": at_kid, "typ": "at+jwt"})
    genuine = jwt.encode(access_claims(), at_key, algorithm="EdDSA", headers={"kid": at_kid, "typ": "at+jwt"})

    for token, detail in ((forged, "unknown key"), (renamed, "not valid")):
        r = world.client.get("/api/v1/forms", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and detail in r.get_json()["detail"], r.get_json()
    assert world.client.get("/api/v1/forms", headers={"Authorization": f"Bearer {genuine}"}).status_code == 200


def test_a_qr_payload_signed_with_an_access_token_key_is_refused_at_the_api_and_by_the_kiosk(app, world):
    form = world.issue()
    with app.app_context():
        at_kid, at_key = app.extensions["keyring"].signing_key(database.session(), keys.ACCESS_TOKEN)
    expires = rules.deadline_end_utc(date.fromisoformat(form["export_deadline"]), "Europe/Amsterdam")
    forged = qrtoken.sign_form_token(form["id"], "NL859559001B01", expires, at_key, at_kid)

    assert scan_verdict(world, forged) == ("refused", "unknown_key")
    published = {"keys": jwks(world)}
    assert at_kid in {k["kid"] for k in published["keys"]}
    offline = qrtoken.KeySet(published)  # what a kiosk and a handheld cache
    assert at_kid not in offline
    refusal = _refusal(forged, offline)
    assert refusal == "unknown_key"
    assert qrtoken.verify_form_token(form["qr_payload"], offline).form_id == form["id"]
    assert qrtoken.KeySet(published, qrtoken.ACCESS_TOKEN).get(at_kid) is not None


def _refusal(payload, keyset) -> str | None:
    try:
        qrtoken.verify_form_token(payload, keyset)
    except qrtoken.TokenRefused as refusal:
        return refusal.reason_code
    return None


# --- the JWKS --------------------------------------------------------------------------

def test_the_jwks_publishes_exactly_the_keys_that_verify_and_says_which_is_which(app, world, runner):
    start = {k["kid"] for k in jwks(world)}
    new_qr, new_at = rotate(runner, "qr"), rotate(runner, "access-token")

    published = {k["kid"] for k in jwks(world)}
    with app.app_context():
        rows = database.session().scalars(select(SigningKey)).all()
    assert published == start | {new_qr, new_at} == {k.kid for k in rows}
    assert {k.kid: k.purpose for k in rows} == {kid: ("qr" if kid.startswith("qr-") else "access_token")
                                                 for kid in published}

    for kid in start:
        let_time_pass_for(app, kid)
    app.extensions["keyring"].invalidate()

    assert {k["kid"] for k in jwks(world)} == {new_qr, new_at}


def test_a_kiosks_cached_jwks_verifies_forms_signed_before_and_after_rotations(app, world, runner):
    old = world.issue()
    rotate(runner, "qr")
    rotate(runner, "access-token")
    rotate(runner, "qr")
    new = world.issue()

    cached = qrtoken.KeySet({"keys": jwks(world)})
    assert qrtoken.verify_form_token(old["qr_payload"], cached).form_id == old["id"]
    assert qrtoken.verify_form_token(new["qr_payload"], cached).form_id == new["id"]
    assert _refusal(world.tokens["shop"], cached) == "malformed_token"
