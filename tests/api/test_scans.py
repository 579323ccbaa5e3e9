"""Verdicts at the exit point: a kiosk scans the QR payload of a real form
(issued through POST /api/v1/forms) and POST /api/v1/scans says validated,
check_required (go to the desk) or refused with a reason code."""
from __future__ import annotations

import re
import secrets
import uuid
from datetime import date, datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import exc, func, select, text

from api import database
from api.models import Device, Event, IdempotencyRecord, Scan
from shared import formid, qrtoken, rules
from shared.risk import RiskPolicy
from tests.builders import form_body, item, scan_at, statements_of, traveller

PROBLEM = "application/problem+json"
SCANS = "/api/v1/scans"
WATCH_HOUSE_PAYS = "Your refund will be paid by Refunds Inc."
DESK = "Go to the customs desk with your goods, passport and this form. The desk is at: Departures 2."


# --- small helpers ----------------------------------------------------------

def issue(world, *items, who="shop", **traveller_fields) -> dict:
    """Issue a form; each form gets its own traveller unless a passport is given,
    so the frequent-traveller rule only fires where a test wants it."""
    fields = {"passport_number": f"P{world.invoices + 1:07d}", **traveller_fields}
    return world.issue(who, *items, traveller=traveller(**fields))


def scan(world, device, payload) -> dict:
    r = world.scan(device, payload)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def events(world, form_id, who="shop") -> list[dict]:
    r = world.get(who, f"/api/v1/forms/{form_id}/events")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def types(evts) -> list[str]:
    return [e["type"] for e in evts]


def form_status(world, form_id, who="shop") -> str:
    r = world.get(who, f"/api/v1/forms/{form_id}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["status"]


def _written(app) -> tuple[int, int, int]:
    """Scan rows, audit events and stored idempotent answers, all forms."""
    with app.app_context():
        session = database.session()
        return tuple(session.scalar(select(func.count()).select_from(model))
                     for model in (Scan, Event, IdempotencyRecord))


def _revoke(app, world, device="kiosk"):
    with app.app_context():
        session = database.session()
        session.get(Device, world.ids[device]).revoked_at = datetime.now(timezone.utc)
        session.commit()


def _signed_for(app, form_id: str) -> str:
    """A genuine QR payload (the keyring's own key) for ``form_id``."""
    with app.app_context():
        kid, key = app.extensions["keyring"].signing_key(database.session())
    return qrtoken.sign_form_token(form_id, "NL859559001B01", datetime.now(timezone.utc) + timedelta(days=30),
                                   key, kid)


def assert_problem(r, status, code) -> dict:
    assert r.status_code == status, r.get_json()
    assert r.mimetype == PROBLEM
    body = r.get_json()
    assert body["status"] == status
    assert body["code"] == code
    return body


def refused(reason_code, message, form=None, form_id=None) -> dict:
    return {
        "form_id": form["id"] if form else form_id,
        "verdict": "refused",
        "reason_code": reason_code,
        "message": message,
        "export_deadline": form["export_deadline"] if form else None,
        "desk_location": None,
        "payer": None,
    }


def validated(form, reason_code=None, message="Export validated. " + WATCH_HOUSE_PAYS) -> dict:
    return {
        "form_id": form["id"], "verdict": "validated", "reason_code": reason_code,
        "message": message, "export_deadline": form["export_deadline"], "desk_location": None,
        "payer": "Refunds Inc",
    }


def sent_to_desk(form) -> dict:
    return {
        "form_id": form["id"], "verdict": "check_required", "reason_code": "selected_for_check",
        "message": DESK, "export_deadline": form["export_deadline"], "desk_location": "Departures 2",
        "payer": None,
    }


def pending_checks(world, exit_point="AMS") -> list[dict]:
    r = world.get("officer", f"/api/v1/checks?exit_point={exit_point}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def fired_rules_of(world, form_id) -> list[dict]:
    [check] = [c for c in pending_checks(world) if c["form_id"] == form_id]
    return check["fired_rules"]


# --- validated now ----------------------------------------------------------

def test_a_plain_low_value_form_is_validated_at_the_kiosk(world):
    form = issue(world)

    assert scan(world, "kiosk", form["qr_payload"]) == validated(form)

    r = world.get("shop", f"/api/v1/forms/{form['id']}")
    body = r.get_json()
    assert body["status"] == "validated"
    assert body["exit_point"] == "AMS"
    assert (body["validated_total_cents"], body["validated_vat_cents"], body["validated_refund_cents"]) == (
        12100, 2100, 1890)
    assert body["validated_at"] is not None
    assert pending_checks(world) == []


def test_a_rescan_repeats_the_verdict_without_validating_twice(world):
    form = issue(world)

    first = scan(world, "kiosk", form["qr_payload"])
    second = scan(world, "kiosk", form["qr_payload"])

    assert first == second == validated(form)
    evts = events(world, form["id"], who="officer")
    assert types(evts) == ["form.issued", "form.validated", "form.scanned", "form.scanned"]
    assert evts[1]["data"] == {"by": "scan", "channel": "kiosk"}
    assert evts[1]["exit_point"] == "AMS"
    assert evts[1]["actor"] == f"device:{world.ids['kiosk']}"
    # The shop sees that a kiosk did it, not which one.
    assert events(world, form["id"])[1]["actor"] == "kiosk"


def test_the_qr_payload_names_the_form_and_ends_when_the_export_deadline_ends(world):
    form = issue(world)
    purchase = date.fromisoformat(form["purchase_date"])

    claims = jwt.decode(form["qr_payload"], options={"verify_signature": False})

    assert claims["fid"] == form["id"]
    assert claims["rv"] == "NL859559001B01"
    deadline = rules.export_deadline(purchase, 3)
    assert form["export_deadline"] == deadline.isoformat()
    assert claims["exp"] == int(rules.deadline_end_utc(deadline, "Europe/Amsterdam").timestamp())


# --- the risk engine sends travellers to the desk -----------------------------

def test_a_watch_sends_the_traveller_to_the_desk_and_opens_a_check(world):
    form = issue(world, item(60500, category="watches", description="Diver watch"))

    assert scan(world, "kiosk", form["qr_payload"]) == sent_to_desk(form)

    [check] = pending_checks(world)
    assert check["form_id"] == form["id"]
    assert check["status"] == "pending"
    assert check["exit_point"] == "AMS"
    assert check["fired_rules"] == [{"code": "watched_category", "detail": "Watched goods: watches."}]
    assert check["total_cents"] == 60500
    assert check["line_count"] == 1
    assert check["traveller_name"] == "Mei Chen"
    assert check["passport_number"] == "*****001"
    assert check["outcome"] is None and check["decided_at"] is None
    assert form_status(world, form["id"]) == "check_required"
    evts = events(world, form["id"], who="officer")
    assert types(evts) == ["form.issued", "form.check_required", "form.scanned"]
    assert evts[1]["data"] == {"fired_rules": check["fired_rules"], "channel": "kiosk"}
    # The shop learns that customs want to see the goods at AMS, not why.
    seen = events(world, form["id"])[1]
    assert (seen["type"], seen["exit_point"], seen["data"]) == ("form.check_required", "AMS", {})


def test_a_form_over_one_thousand_euros_goes_to_the_desk(world):
    form = issue(world, item(100001))

    assert scan(world, "kiosk", form["qr_payload"])["verdict"] == "check_required"

    assert fired_rules_of(world, form["id"]) == [
        {"code": "high_value", "detail": "Total EUR 1,000.01 is above EUR 1,000.00."}]


def test_a_form_of_exactly_one_thousand_euros_is_not_above_the_threshold(world):
    form = issue(world, item(50000, quantity=2))

    assert scan(world, "kiosk", form["qr_payload"]) == validated(form)

    assert pending_checks(world) == []


def test_an_expensive_watch_fires_every_rule_that_applies_in_order(world):
    form = issue(world, item(250000, category="watches"), item(12100))

    scan(world, "kiosk", form["qr_payload"])

    assert [r["code"] for r in fired_rules_of(world, form["id"])] == ["high_value", "watched_category"]


def test_the_random_check_picks_a_form_when_the_sample_rate_is_one(app, world):
    app.config["RISK"] = RiskPolicy(sample_rate=1.0)
    form = issue(world)

    assert scan(world, "kiosk", form["qr_payload"]) == sent_to_desk(form)

    assert fired_rules_of(world, form["id"]) == [
        {"code": "random_sample", "detail": "Picked by the random check."}]


def test_an_eu_passport_holder_living_abroad_is_asked_for_proof_of_residence(world):
    form = issue(world, passport_country="DE", nationality="DE", residence_country="US")

    assert scan(world, "kiosk", form["qr_payload"]) == sent_to_desk(form)

    assert fired_rules_of(world, form["id"]) == [{
        "code": "eu_passport_holder",
        "detail": "Passport issued by DE, an EU country: ask for proof of residence outside the EU.",
    }]


def test_a_traveller_with_five_forms_this_week_is_checked_but_not_with_four(world):
    fourth = None
    for _ in range(4):
        fourth = issue(world, passport_number="F7654321")
    assert scan(world, "kiosk", fourth["qr_payload"]) == validated(fourth)

    fifth = issue(world, passport_number="F7654321")
    assert scan(world, "kiosk", fifth["qr_payload"]) == sent_to_desk(fifth)

    assert fired_rules_of(world, fifth["id"]) == [{
        "code": "frequent_traveller", "detail": "5 forms in the last 7 days (check from 5)."}]


# --- refusals ----------------------------------------------------------------

def test_an_altered_qr_code_is_refused_as_tampered(world):
    form = issue(world)
    header, claims, signature = form["qr_payload"].split(".")
    middle = len(claims) // 2
    other = "A" if claims[middle] != "A" else "B"
    altered = ".".join([header, claims[:middle] + other + claims[middle + 1:], signature])

    assert scan(world, "kiosk", altered) == refused(
        "bad_signature", "This form code has been altered and cannot be accepted.")

    assert form_status(world, form["id"]) == "issued"
    assert types(events(world, form["id"])) == ["form.issued"]


def test_a_truncated_qr_code_is_not_a_form_code(world):
    form = issue(world)
    truncated = form["qr_payload"][: len(form["qr_payload"]) // 2]

    assert scan(world, "kiosk", truncated) == refused("malformed_token", "This is not a tax-free form code.")

    assert form_status(world, form["id"]) == "issued"


def test_a_form_signed_by_a_foreign_key_is_refused_as_unknown(world):
    form = issue(world)
    kid = f"{date.today():%Y-%m-%d}-{secrets.token_hex(3)}"
    forged = qrtoken.sign_form_token(
        form["id"], "NL859559001B01", datetime.now(timezone.utc) + timedelta(days=30),
        Ed25519PrivateKey.generate(), kid)

    assert scan(world, "kiosk", forged) == refused(
        "unknown_key", "This form was not issued by a known tax-free system.")

    assert form_status(world, form["id"]) == "issued"
    assert types(events(world, form["id"])) == ["form.issued"]


def test_a_genuine_signature_on_a_form_that_does_not_exist_is_not_found(app, world):
    missing = formid.new_form_id("NL")
    token = _signed_for(app, missing)

    assert scan(world, "kiosk", token) == refused(
        "form_not_found", "This form is not known. Ask the shop or your refund company.", form_id=missing)


def test_a_cancelled_form_is_refused(world):
    form = issue(world)
    r = world.post("shop", f"/api/v1/forms/{form['id']}/cancel")
    assert r.status_code == 200, r.get_json()

    assert scan(world, "kiosk", form["qr_payload"]) == refused(
        "form_cancelled", "This form was cancelled by the shop.", form)

    assert form_status(world, form["id"]) == "cancelled"
    assert types(events(world, form["id"])) == ["form.issued", "form.cancelled", "form.scanned"]


def test_a_form_is_validated_in_the_last_second_of_its_deadline(app, world):
    form = issue(world)
    end = rules.deadline_end_utc(date.fromisoformat(form["export_deadline"]), "Europe/Amsterdam")

    outcome = scan_at(app, world, "kiosk", form["qr_payload"], end - timedelta(seconds=1))

    assert (outcome.verdict, outcome.reason_code) == ("validated", None)
    assert form_status(world, form["id"]) == "validated"


def test_a_form_scanned_after_its_export_deadline_is_refused_and_expires(app, world):
    form = issue(world)
    deadline = date.fromisoformat(form["export_deadline"])
    end = rules.deadline_end_utc(deadline, "Europe/Amsterdam")

    outcome = scan_at(app, world, "kiosk", form["qr_payload"], end)

    assert (outcome.verdict, outcome.reason_code, outcome.form_id) == ("refused", "deadline_passed", form["id"])
    assert outcome.message == f"The export deadline for this form passed on {deadline.isoformat()}."
    assert form_status(world, form["id"]) == "expired"
    assert types(events(world, form["id"])) == ["form.issued", "form.expired", "form.scanned"]
    # Once expired, the form stays refused whatever the clock says.
    assert scan(world, "kiosk", form["qr_payload"]) == refused(
        "deadline_passed", f"The export deadline for this form passed on {deadline.isoformat()}.", form)


def test_a_form_already_validated_at_schiphol_is_refused_at_rotterdam(world):
    form = issue(world)
    scan(world, "kiosk", form["qr_payload"])

    assert scan(world, "rtm-kiosk", form["qr_payload"]) == refused(
        "validated_elsewhere", "This form was already validated at another exit point.", form)

    # Schiphol still says validated; the form keeps its exit point.
    assert scan(world, "kiosk", form["qr_payload"]) == validated(form)
    r = world.get("shop", f"/api/v1/forms/{form['id']}")
    assert (r.get_json()["status"], r.get_json()["exit_point"]) == ("validated", "AMS")


def test_a_form_rejected_at_the_desk_is_refused_at_the_kiosk(world):
    form = issue(world, item(60500, category="watches"))
    scan(world, "kiosk", form["qr_payload"])
    r = world.post("officer", f"/api/v1/forms/{form['id']}/decision",
                   {"outcome": "rejected", "reason_code": "goods_not_presented"})
    assert r.status_code == 200, r.get_json()

    assert scan(world, "kiosk", form["qr_payload"]) == refused(
        "rejected_at_check", "Customs refused the export of these goods at a physical check.", form)


def test_an_access_token_shown_as_a_qr_code_is_not_a_form_code(world):
    issue(world)

    assert scan(world, "kiosk", world.tokens["shop"]) == refused(
        "malformed_token", "This is not a tax-free form code.")


# --- key rotation -----------------------------------------------------------

def _rotate(runner, purpose="qr") -> str:
    result = runner.invoke(args=["rotate-keys", "--purpose", purpose])
    assert result.exit_code == 0, result.output
    return re.match(r"New signing key (\S+)\.", result.output).group(1)


def _kid(token) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _jwks_kids(world) -> list[str]:
    r = world.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return [k["kid"] for k in r.get_json()["keys"]]


def test_forms_signed_before_two_rotations_still_validate_within_their_deadline(world, runner):
    old_form = issue(world)
    first_kid = _kid(old_form["qr_payload"])

    second_kid = _rotate(runner)
    new_form = issue(world)
    assert _kid(new_form["qr_payload"]) == second_kid
    third_kid = _rotate(runner)

    assert {first_kid, second_kid, third_kid} <= set(_jwks_kids(world))
    assert scan(world, "kiosk", old_form["qr_payload"]) == validated(old_form)
    assert scan(world, "kiosk", new_form["qr_payload"]) == validated(new_form)
    # QR rotations leave the access tokens alone.
    assert world.get("shop", f"/api/v1/forms/{new_form['id']}").status_code == 200
    assert _kid(issue(world)["qr_payload"]) == third_kid


def test_a_form_signed_by_a_key_another_worker_just_made_validates_at_once(app, world):
    """Each worker keeps the keys it loaded for a while; a payload whose kid
    it does not hold makes it load them again before judging, instead of
    refusing a genuine form as signed by an unknown key."""
    scan(world, "kiosk", issue(world)["qr_payload"])  # this worker has its keys loaded
    form, new_kid = world.issue_with_a_key_another_worker_made(
        app, traveller=traveller(passport_number="P7777777"))
    assert _kid(form["qr_payload"]) == new_kid
    assert new_kid not in _jwks_kids(world)  # this worker has not seen the new key yet

    assert scan(world, "kiosk", form["qr_payload"]) == validated(form)
    assert new_kid in _jwks_kids(world)


def test_the_jwks_publishes_public_ed25519_keys_only(world):
    r = world.client.get("/.well-known/jwks.json")

    keys = r.get_json()["keys"]
    assert sorted(k["kid"][:3] for k in keys) == ["at-", "qr-"]
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")


# --- who may scan -------------------------------------------------------------

def test_an_officer_cannot_scan_as_a_kiosk(world):
    form = issue(world)

    body = assert_problem(world.scan("officer", form["qr_payload"]), 403, "forbidden")

    assert body["detail"] == "Your role may not do this."
    assert form_status(world, form["id"]) == "issued"


def test_a_retailer_cannot_validate_its_own_form(world):
    form = issue(world)

    assert_problem(world.scan("shop", form["qr_payload"]), 403, "forbidden")

    assert form_status(world, form["id"]) == "issued"


def test_a_scan_without_a_token_is_unauthorized(world):
    form = issue(world)

    r = world.client.post(SCANS, json={"qr_payload": form["qr_payload"]})

    assert_problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="taxfree"'
    assert form_status(world, form["id"]) == "issued"


def test_a_revoked_kiosk_can_no_longer_scan(app, world):
    form = issue(world)
    _revoke(app, world)

    body = assert_problem(world.scan("kiosk", form["qr_payload"]), 401, "unauthorized")

    assert body["detail"] == "The device token is not valid or the device was revoked."
    assert form_status(world, form["id"]) == "issued"
    # The other exit point's kiosk is not affected.
    assert scan(world, "rtm-kiosk", form["qr_payload"])["verdict"] == "validated"


# A live scan reads the device's row with the form's facts: the device is
# authenticated by that row before anything is written or answered.

def test_a_live_scan_reads_the_devices_row_with_the_forms_facts(app, world):
    form = issue(world)
    answers = []

    sent = statements_of(app, lambda: answers.append(world.scan("kiosk", form["qr_payload"])))

    assert answers[0].status_code == 200 and answers[0].get_json()["verdict"] == "validated"
    first = sent[0]
    assert "FROM devices JOIN exit_points AS here" in first and "forms" in first, first
    assert not [s for s in sent[1:] if "FROM devices" in s], sent
    if app.extensions["db_engine"].dialect.name == "postgresql":
        # The device with the facts, the verdict with its scan row, the links.
        assert len(sent) == 3, sent
    # The scan is the device's: its exit point, its row in the scans table.
    assert events(world, form["id"])[-1]["exit_point"] == "AMS"
    with app.app_context():
        assert database.session().scalars(select(Scan.device_id).where(Scan.form_id == form["id"])).all() \
            == [world.ids["kiosk"]]


@pytest.mark.parametrize("payload", ["genuine", "altered", "not_found"])
def test_a_revoked_device_gets_401_and_nothing_is_written_whatever_it_scans(app, world, payload):
    form = issue(world)
    _revoke(app, world)
    before = _written(app)
    qr = {"genuine": form["qr_payload"], "altered": form["qr_payload"][:-6] + "AAAAAA",
          "not_found": _signed_for(app, formid.new_form_id("NL"))}[payload]

    body = assert_problem(world.scan("kiosk", qr), 401, "unauthorized")

    assert body["detail"] == "The device token is not valid or the device was revoked."
    assert _written(app) == before
    assert form_status(world, form["id"]) == "issued"


@pytest.mark.parametrize("forgery", ["wrong_secret", "unknown_device"])
def test_a_forged_device_token_gets_401_for_a_genuine_form(app, world, forgery):
    form = issue(world)
    token = world.devices["kiosk"]
    forged = {"wrong_secret": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
              "unknown_device": f"tfd_{uuid.uuid4()}.{token.rsplit('.', 1)[1]}"}[forgery]
    before = _written(app)

    r = world.client.post(SCANS, json={"qr_payload": form["qr_payload"]},
                          headers={"Authorization": f"Bearer {forged}"})

    assert_problem(r, 401, "unauthorized")
    assert _written(app) == before
    assert form_status(world, form["id"]) == "issued"


@pytest.mark.parametrize("how", ["idempotency_key", "queued"])
def test_a_revoked_device_is_refused_before_a_stored_answer_or_its_last_contact_is_read(app, world, how):
    """With an Idempotency-Key, the stored answer is read with the device's
    row and looked at only once the row has authenticated the device; a
    queued scan reads the device's row on its own before its last live
    scan. Either way the one statement sent before the 401 is the device's."""
    form = issue(world)
    key = {"Idempotency-Key": f"scan-{secrets.token_hex(4)}"}
    first = world.post("kiosk", SCANS, {"qr_payload": form["qr_payload"]}, headers=key)
    assert first.status_code == 200, first.get_json()
    _revoke(app, world)
    before = _written(app)
    body, headers = {"qr_payload": form["qr_payload"]}, key
    if how == "queued":
        body, headers = {**body, "queued": True,
                         "scanned_at": datetime.now(timezone.utc).isoformat()}, {}

    sent = statements_of(app, lambda: assert_problem(world.post("kiosk", SCANS, body, headers=headers),
                                                      401, "unauthorized"))

    assert _written(app) == before
    # One statement, the device's row (with the stored answer, for a key).
    assert len(sent) == 1 and "FROM devices JOIN exit_points ON" in sent[0], sent
    assert ("idempotency_records" in sent[0]) == (how == "idempotency_key")


def test_a_kiosks_scan_with_its_key_reads_the_stored_answer_with_the_devices_row(app, world):
    form = issue(world)
    key = {"Idempotency-Key": f"scan-{secrets.token_hex(4)}"}
    answers = []

    sent = statements_of(app, lambda: answers.append(
        world.post("kiosk", SCANS, {"qr_payload": form["qr_payload"]}, headers=key)))
    again = statements_of(app, lambda: answers.append(
        world.post("kiosk", SCANS, {"qr_payload": form["qr_payload"]}, headers=key)))

    first, replayed = answers
    assert first.status_code == replayed.status_code == 200
    assert replayed.get_json() == first.get_json() and first.get_json()["verdict"] == "validated"
    assert "Idempotent-Replayed" not in first.headers and replayed.headers["Idempotent-Replayed"] == "true"
    for statements in (sent, again):
        assert "FROM devices JOIN exit_points ON" in statements[0] and "idempotency_records" in statements[0]
        assert not [s for s in statements[1:] if "FROM devices" in s], statements
    assert len(again) == 1, again
    # The answer is stored before the verdict's write, which takes the
    # counters every writer waits for.
    [stored] = [i for i, s in enumerate(sent) if s.startswith("INSERT INTO idempotency_records")]
    [verdict] = [i for i, s in enumerate(sent) if "UPDATE forms SET status" in s]
    assert stored < verdict, sent
    if app.extensions["db_engine"].dialect.name == "postgresql":
        # The device with the stored answer, the facts, the answer stored,
        # the verdict, the links.
        assert len(sent) == 5, sent


@pytest.mark.parametrize("keyed", [False, True], ids=["no key", "Idempotency-Key"])
@pytest.mark.parametrize("write", ["scan", "issue"])
def test_an_answer_is_made_once_the_counters_are_free_or_before_they_are_taken(app, world, monkeypatch, write,
                                                                               keyed):
    """A scan or an issue takes the change feed's and the audit chain's
    counters in its own statement and holds them until it commits; every
    other writer waits for them. Without a key its answer is made after the
    commit. With one, the answer is stored in the write's transaction: a
    scan's before its verdict's write takes the counters, an issue's after
    (its answer is the form written). On PostgreSQL another connection
    tries the counters' row locks at the moment the answer is made."""
    from api.resources import forms as forms_view
    from api.resources import scans as scans_view

    schema = scans_view._SCAN_RESPONSE if write == "scan" else forms_view._FORM
    original = schema.dump
    engine = app.extensions["db_engine"]
    seen = []

    def dump(made):
        counters_free = None
        if engine.dialect.name == "postgresql":
            with engine.connect() as other:
                try:
                    other.execute(text("SELECT name FROM change_counters FOR UPDATE NOWAIT")).all()
                    counters_free = True
                except exc.OperationalError as error:
                    assert "could not obtain lock" in str(error)
                    counters_free = False
                other.rollback()
        seen.append((database.session().in_transaction(), counters_free))
        return original(made)

    # (The first form made the counters' rows: a write before them takes
    # its numbers as it commits.)
    form = issue(world)
    monkeypatch.setattr(schema, "dump", dump)
    headers = {"Idempotency-Key": f"answer-{secrets.token_hex(4)}"} if keyed else {}
    if write == "scan":
        r = world.post("kiosk", SCANS, {"qr_payload": form["qr_payload"]}, headers=headers)
        assert r.status_code == 200 and r.get_json()["verdict"] == "validated", r.get_json()
    else:
        r = world.post("shop", "/api/v1/forms", form_body(invoice="INV-ANSWER"), headers=headers)
        assert r.status_code == 201 and r.get_json()["invoice_number"] == "INV-ANSWER", r.get_json()

    in_transaction, counters_free = seen[0]
    assert len(seen) == 1 and in_transaction == keyed
    if engine.dialect.name == "postgresql":
        assert counters_free is (not keyed or write == "scan")


def test_a_kiosks_key_is_its_own(app, world):
    """Another device sending the same key gets its own verdict; the same
    device sending the key with another form is refused."""
    form, other = issue(world), issue(world)
    key = {"Idempotency-Key": "scan-1"}
    assert world.post("kiosk", SCANS, {"qr_payload": form["qr_payload"]}, headers=key).status_code == 200

    r = world.post("rtm-kiosk", SCANS, {"qr_payload": other["qr_payload"]}, headers=key)
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert r.get_json()["form_id"] == other["id"] and r.get_json()["verdict"] == "validated"
    reused = world.post("kiosk", SCANS, {"qr_payload": other["qr_payload"]}, headers=key)
    assert_problem(reused, 422, "idempotency_key_reused")




# --- the audit trail of scans -------------------------------------------------

def test_every_scan_of_a_form_is_recorded_with_its_verdict(world):
    form = issue(world)

    scan(world, "kiosk", form["qr_payload"])
    scan(world, "kiosk", form["qr_payload"])
    scan(world, "rtm-kiosk", form["qr_payload"])

    scanned = [e for e in events(world, form["id"], who="officer") if e["type"] == "form.scanned"]
    assert [(e["exit_point"], e["actor"], e["data"]) for e in scanned] == [
        ("AMS", f"device:{world.ids['kiosk']}", {"verdict": "validated", "reason_code": None, "channel": "kiosk"}),
        ("AMS", f"device:{world.ids['kiosk']}", {"verdict": "validated", "reason_code": None, "channel": "kiosk"}),
        ("RTM", f"device:{world.ids['rtm-kiosk']}", {"verdict": "refused", "reason_code": "validated_elsewhere",
                                                     "channel": "kiosk"}),
    ]


def test_scans_at_the_desk_and_after_a_decision_are_recorded_too(world):
    form = issue(world, item(60500, category="watches"))

    scan(world, "kiosk", form["qr_payload"])
    scan(world, "kiosk", form["qr_payload"])
    r = world.post("officer", f"/api/v1/forms/{form['id']}/decision", {"outcome": "validated"})
    assert r.status_code == 200, r.get_json()
    scan(world, "kiosk", form["qr_payload"])

    assert [(e["type"], e["data"].get("verdict"), e["data"].get("reason_code"))
            for e in events(world, form["id"])] == [
        ("form.issued", None, None),
        ("form.check_required", None, None),
        ("form.scanned", "check_required", "selected_for_check"),
        ("form.scanned", "check_required", "selected_for_check"),
        ("form.validated", None, None),
        ("form.scanned", "validated", None),
    ]


def test_a_traveller_sent_to_the_desk_at_schiphol_scanning_in_rotterdam_is_sent_to_rotterdams_desk(world):
    form = world.issue("shop", {"description": "Watch", "quantity": 1, "unit_price_cents": 30000,
                                "vat_rate": 21, "category": "watches"})
    assert world.scan("kiosk", form["qr_payload"]).get_json()["desk_location"] == "Departures 2"
    at_rtm = world.scan("rtm-kiosk", form["qr_payload"]).get_json()
    assert at_rtm["verdict"] == "check_required"
    assert at_rtm["desk_location"] is None  # Rotterdam's exit point has no desk location set
    assert "Departures 2" not in at_rtm["message"]
