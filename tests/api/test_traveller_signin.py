"""Signing in with a passport: the same answer for every passport and date
of birth, limits against guessing, tokens that pass for nothing else, and
a traveller who sees only their own forms."""
from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from datetime import date, timedelta

import requests

from tests.api.traveller_support import app_world, coat, watch  # noqa: F401

SESSION = "/api/v1/traveller/session"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def header_of(token: str) -> dict:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def shape(response) -> tuple:
    """What an observer can compare between two sign-ins."""
    body = response.get_json()
    # The date and the request's own id differ from one request to the next
    # whoever signs in.
    headers = sorted((k, v) for k, v in response.headers.items() if k not in ("Date", "X-Request-ID"))
    return (response.status_code, sorted(body), body["token_type"], body["expires_in"],
            len(body["access_token"]), headers)


def test_a_wrong_date_of_birth_gets_the_same_answer_as_a_right_one(app_world):
    app_world.issue_for(coat())
    mei = app_world.phone()
    right = mei.sign_in()
    wrong = mei.sign_in(dob="1988-03-15")
    nobody = app_world.phone(passport="X99999999", country="JP", dob="1990-01-01").sign_in()

    assert shape(right) == shape(wrong) == shape(nobody)
    assert right.get_json()["expires_in"] == 900
    # ... but only the right one sees the forms.
    assert len(app_world.phone().signed_in().forms()) == 1
    wrong_phone = app_world.phone()
    wrong_phone.sign_in(dob="1988-03-15")
    assert wrong_phone.forms() == []


def test_the_token_holds_no_passport_number_or_date_of_birth(app_world):
    token = app_world.phone().sign_in().get_json()["access_token"]
    raw = json.dumps(claims_of(token))
    assert "E12345678" not in raw and "1988" not in raw
    assert header_of(token)["typ"] == "traveller+jwt"
    assert claims_of(token)["aud"].endswith("/traveller")


def test_a_thousand_guessed_dates_of_birth_meet_the_per_passport_limit(app_world, app, figures):
    app_world.issue_for(coat())
    app.config["TRAVELLER_SIGNINS_PER_ADDRESS_PER_MINUTE"] = 10_000  # spread over many addresses anyway
    # What a right sign-in of a passport without forms looks like.
    right = shape(app_world.phone(passport="X99999999", country="JP", dob="1990-01-01").sign_in())
    guesser = app_world.phone()
    statuses = []
    for n in range(1000):
        dob = (date(1950, 1, 1) + timedelta(days=n * 17)).isoformat()
        r = guesser.sign_in(dob=dob, address=f"10.{n // 250}.{n % 250}.1")
        statuses.append(r.status_code)
        if r.status_code == 200:
            assert shape(r) == right  # a wrong guess looks like a right answer
    limit = app.config["TRAVELLER_SIGNINS_PER_PASSPORT_PER_HOUR"]
    assert statuses[:limit] == [200] * limit and set(statuses[limit:]) == {429}
    figures(sent=1000, answered_200=statuses.count(200), limited_429=statuses.count(429))
    # None of the tokens it got sees a form (none of those dates was right).
    assert guesser.forms() == []
    # The limit names the passport, not the phone: another phone is limited too.
    r = app_world.phone().sign_in()
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.get_json()["code"] == "too_many_requests"


def _within_one_minute(seconds_needed: float = 30) -> float:
    """The limit counts per minute of the clock (a fixed window): wait, if
    need be, for the next minute, so that what follows falls within one.
    Returns the minute's number."""
    into = time.time() % 60
    if into > 60 - seconds_needed:
        time.sleep(60 - into + 0.2)
    return time.time() // 60


def test_a_thousand_passports_from_one_address_meet_the_per_address_limit(app_world, app):
    limit = app.config["TRAVELLER_SIGNINS_PER_ADDRESS_PER_MINUTE"]
    minute = _within_one_minute()
    statuses = [app_world.phone(passport=f"P{n:08d}").sign_in(address="192.0.2.7").status_code for n in range(1000)]
    r = app_world.phone(passport="Q00000001").sign_in(address="192.0.2.7")
    assert time.time() // 60 == minute, "the sign-ins took longer than the window they were meant to fit in"
    assert statuses[:limit] == [200] * limit and set(statuses[limit:]) == {429}
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["Content-Type"] == "application/problem+json"
    # Another address is not held up.
    assert app_world.phone(passport="Q00000002").sign_in(address="192.0.2.8").status_code == 200


def test_no_passport_number_in_any_log_line_or_url(app_world, live_server, caplog):
    """Over real HTTP, with the development server's request log."""
    app_world.issue_for(watch())
    caplog.set_level(logging.DEBUG)
    install = str(uuid.uuid4())
    r = requests.post(f"{live_server}{SESSION}", json={
        "passport_number": "E12345678", "passport_country": "CN", "date_of_birth": "1988-03-14",
        "install_id": install}, timeout=10)
    token = r.json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    forms = requests.get(f"{live_server}/api/v1/traveller/forms", headers=auth, timeout=10).json()["items"]
    requests.post(f"{live_server}/api/v1/traveller/validations", headers={**auth, "Idempotency-Key": "k1"}, json={
        "exit_point": "AMS", "form_ids": [forms[0]["id"]],
        "evidence": {"install_id": install, "gps": None, "beacons": []}}, timeout=10)
    requests.post(f"{live_server}/api/v1/traveller/desk-pass", headers=auth, timeout=10)
    requests.post(f"{live_server}{SESSION}", json={"passport_number": "E12345678", "passport_country": "XX",
                                                   "date_of_birth": "1988-03-14", "install_id": install}, timeout=10)
    logged = caplog.text
    assert "/api/v1/traveller/forms" in logged  # the request log was captured
    assert "E12345678" not in logged and "1988-03-14" not in logged


def test_a_traveller_token_is_no_user_token_and_a_user_token_no_traveller_token(app_world):
    phone = app_world.phone().signed_in()
    for path in ("/api/v1/forms", "/api/v1/checks", "/api/v1/exit-points"):
        assert phone.get(path).status_code == 403
    assert phone.post("/api/v1/auth/refresh").status_code == 403
    assert phone.post("/api/v1/scans", {"qr_payload": "x"}).status_code == 403
    assert phone.post("/api/v1/desk/travellers", {"desk_pass": phone.token}).status_code == 403
    for who in ("shop", "officer", "root", "kiosk"):
        r = app_world.get(who, "/api/v1/traveller/forms")
        assert r.status_code == 403, who
    # A desk pass is no bearer token, and a traveller token no desk pass.
    form = app_world.issue_for(watch())
    desk_pass = phone.verdicts([form["id"]])["desk_pass"]
    r = app_world.client.get("/api/v1/traveller/forms", headers={"Authorization": f"Bearer {desk_pass}"})
    assert r.status_code == 401
    for not_a_pass in (phone.token, app_world.tokens["officer"]):
        r = app_world.post("officer", "/api/v1/desk/travellers", {"desk_pass": not_a_pass})
        assert (r.status_code, r.get_json()["code"]) == (422, "invalid_desk_pass")


def test_a_traveller_token_with_its_type_changed_is_refused(app_world):
    """Re-labelled as an access token, its audience still gives it away (and
    the signature covers the header anyway)."""
    phone = app_world.phone().signed_in()
    head, payload, signature = phone.token.split(".")
    relabelled = base64.urlsafe_b64encode(json.dumps({**header_of(phone.token), "typ": "at+jwt"}).encode())
    forged = f"{relabelled.decode().rstrip('=')}.{payload}.{signature}"
    assert app_world.client.get("/api/v1/forms", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_a_traveller_sees_only_forms_of_their_passport_and_date_of_birth(app_world):
    mine = app_world.issue_for(coat())
    app_world.issue_for(coat(), passport_number="568432190", passport_country="US", nationality="US",
                        residence_country="US", date_of_birth="1979-11-02")
    # Same passport number, another issuing country: another passport.
    app_world.issue_for(coat(), passport_country="JP", nationality="JP", residence_country="JP")
    # Same passport, another date of birth (a shop's typo): not shown.
    app_world.issue_for(coat(), date_of_birth="1988-03-15")

    [form] = app_world.phone().signed_in().forms()

    assert form["id"] == mine["id"]
    assert set(form) == {"id", "shop", "purchase_date", "goods", "total_cents", "refund_cents", "currency",
                         "export_deadline", "status", "payer", "exit_point", "validated_at", "refunded_at"}
    assert (form["shop"], form["goods"], form["payer"], form["status"]) == (
        "Watch House", ["Wool coat"], "Refunds Inc", "issued")
    assert "E12345678" not in json.dumps(form) and "Chen" not in json.dumps(form)


def test_decided_forms_stay_in_the_list_for_90_days(app_world):
    from sqlalchemy import text

    from api import database

    form = app_world.issue_for(coat())
    phone = app_world.phone().signed_in()
    phone.verdicts([form["id"]])
    assert [f["status"] for f in phone.forms()] == ["validated"]
    with app_world.app.app_context():
        session = database.session()
        old = "2000-01-01 00:00:00" if session.bind.dialect.name == "sqlite" else "2000-01-01T00:00:00+00:00"
        session.execute(text("UPDATE forms SET updated_at = :at WHERE id = :id"), {"at": old, "id": form["id"]})
        session.commit()
    assert phone.forms() == []


def test_claiming_a_qr_code_finds_the_form_only_for_its_passport(app_world):
    mine = app_world.issue_for(coat())
    theirs = app_world.issue_for(coat(), passport_number="568432190", passport_country="US", nationality="US",
                                 residence_country="US", date_of_birth="1979-11-02")
    phone = app_world.phone().signed_in()

    r = phone.post("/api/v1/traveller/forms/claim", {"qr_payload": mine["qr_payload"]})
    assert r.status_code == 200 and r.get_json()["id"] == mine["id"]
    r = phone.post("/api/v1/traveller/forms/claim", {"qr_payload": theirs["qr_payload"]})
    assert (r.status_code, r.get_json()["code"]) == (422, "passport_mismatch")
    assert "correct the passport number" in r.get_json()["detail"]
    r = phone.post("/api/v1/traveller/forms/claim", {"qr_payload": "not a code"})
    assert (r.status_code, r.get_json()["code"]) == (422, "malformed_token")
    head, payload, signature = mine["qr_payload"].split(".")
    altered = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    r = phone.post("/api/v1/traveller/forms/claim", {"qr_payload": f"{head}.{payload}.{altered}"})
    assert (r.status_code, r.get_json()["code"]) == (422, "bad_signature")


def test_a_form_signed_by_a_key_another_worker_just_made_is_claimed_at_once(app_world, app):
    """As a kiosk's scan: a kid this worker has not loaded yet makes it
    load the keys again, instead of refusing the traveller's form."""
    phone = app_world.phone().signed_in()
    form, new_kid = app_world.world.issue_with_a_key_another_worker_made(app)

    r = phone.post("/api/v1/traveller/forms/claim", {"qr_payload": form["qr_payload"]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["id"] == form["id"]


def test_the_desk_pass_can_be_shown_again(app_world):
    phone = app_world.phone().signed_in()
    r = phone.post("/api/v1/traveller/desk-pass")
    assert r.status_code == 200 and r.get_json()["expires_in"] == 900
    desk_pass = r.get_json()["desk_pass"]
    assert header_of(desk_pass)["typ"] == "desk-pass+jwt"
    assert "E12345678" not in json.dumps(claims_of(desk_pass))


def test_exit_points_list_zones_and_post_ids_never_secrets(app_world):
    phone = app_world.phone().signed_in()
    r = phone.get("/api/v1/traveller/exit-points")
    assert r.status_code == 200
    by_code = {p["code"]: p for p in r.get_json()["items"]}
    assert set(by_code) == {"AMS", "RTM"}
    assert by_code["AMS"]["posts"] == ["AMS-D2-01"] and by_code["AMS"]["zones"][0]["name"] == "Departures 2"
    assert app_world.secrets["AMS-D2-01"] not in r.get_data(as_text=True)
