"""What a copy of the database gives away: no usable private key, no webhook
secret, no traveller in the stored responses of idempotent requests; the
keys that open them live outside the database, rotate, and are required in
production."""
from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, inspect, text
from standardwebhooks import Webhook as SignatureCheck

from api import create_app, database, keys
from api.models import utcnow
from api.config import KEYS_KEPT_OUTSIDE
from api.problems import Problem
from api.schemas import PassportScanRequest
from api.services import deliveries, idempotency
from shared import qrtoken
from tests.api.test_webhooks import Receiver
from tests.builders import form_body, item, traveller
from tests.servers import ROOT

WATCH = item(49999, category="watches", description="Diver watch")


def every_value(database_url: str, tables=None) -> list[str]:
    """Every value of every column of ``tables`` (all by default), as text:
    what a backup holds."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            values = []
            for table in tables or inspect(conn).get_table_names():
                for row in conn.execute(text(f"SELECT * FROM {table}")):
                    values += [json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v) for v in row]
            return values
    finally:
        engine.dispose()


def raw_rows(database_url: str, query: str) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(query)).all()
    finally:
        engine.dispose()


def app_with(database_url, **settings):
    """Another app (another machine, or this one restarted) on the same database."""
    return create_app({"TESTING": True, "DATABASE_URL": database_url, "RISK_POLICY": {"sample_rate": 0.0},
                       "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "WEBHOOKS_ALLOW_PRIVATE": True, **settings})


# --- private keys and webhook secrets -------------------------------------------------

def test_a_copy_of_the_database_yields_no_usable_private_key_or_webhook_secret(app, world, runner, database_url):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hook = world.post("refunds", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["form.validated"]})
    assert hook.status_code == 201
    secret = hook.get_json()["secret"]
    for purpose in ("qr", "access-token"):
        assert runner.invoke(args=["rotate-keys", "--purpose", purpose]).exit_code == 0

    backup = "\n".join(every_value(database_url))

    assert "PRIVATE KEY" not in backup and "MC4CAQAwBQYDK2Vw" not in backup  # no PEM, no PKCS8 DER
    assert secret not in backup and secret.removeprefix("whsec_") not in backup
    stored = raw_rows(database_url, "SELECT kid, private_key, public_jwk FROM signing_keys")
    signing = [(kid, sealed, jwk) for kid, sealed, jwk in stored if sealed is not None]
    assert sorted(kid[:3] for kid, _, _ in signing) == ["at-", "qr-"]  # rotated-out keys kept no private half
    someone_elses = Fernet(Fernet.generate_key())
    cipher = MultiFernet([Fernet(k) for k in os.environ["SIGNING_KEY_ENCRYPTION_KEYS"].split(",")])
    for kid, sealed, jwk in signing:
        with pytest.raises(ValueError):
            qrtoken.private_key_from_pem(sealed)
        with pytest.raises(InvalidToken):
            someone_elses.decrypt(sealed.encode())
        # Only the key kept outside the database opens it, to the key published.
        opened = qrtoken.private_key_from_pem(cipher.decrypt(sealed.encode()).decode())
        published = json.loads(jwk) if isinstance(jwk, str) else jwk
        assert qrtoken.public_jwk(opened, kid) == published
    [(sealed_secret,)] = raw_rows(database_url, "SELECT secret FROM webhooks")
    assert cipher.decrypt(sealed_secret.encode()).decode() == secret


def test_rotating_the_encryption_key_keeps_signing_and_verifying(app, world, database_url):
    old_key = app.config["SIGNING_KEY_ENCRYPTION_KEYS"]
    new_key = Fernet.generate_key().decode()
    form = world.issue()
    old_token = world.tokens["shop"]
    with Receiver() as receiver:
        app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
        secret = world.post("refunds", "/api/v1/webhooks",
                            {"url": receiver.url(), "events": ["form.cancelled"]}).get_json()["secret"]

        both = app_with(database_url, SIGNING_KEY_ENCRYPTION_KEYS=f"{new_key},{old_key}")
        result = both.test_cli_runner().invoke(args=["reencrypt-signing-keys"])
        assert result.exit_code == 0, result.output
        assert result.output == "3 signing secret(s) encrypted with the newest key.\n"  # QR, access token, webhook
        both.extensions["db_engine"].dispose()

        only_new = app_with(database_url, SIGNING_KEY_ENCRYPTION_KEYS=new_key)
        try:
            client = only_new.test_client()
            auth = {"Authorization": f"Bearer {old_token}"}
            assert client.get(f"/api/v1/forms/{form['id']}", headers=auth).status_code == 200  # verifies
            token = client.post("/api/v1/auth/token", json={"username": "shop", "password": "correct-horse-battery"})
            assert token.status_code == 200  # signs
            auth = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
            issued = client.post("/api/v1/forms", json=form_body(invoice="AFTER-1"), headers=auth)
            assert issued.status_code == 201
            for payload in (form["qr_payload"], issued.get_json()["qr_payload"]):
                r = client.post("/api/v1/scans", json={"qr_payload": payload},
                                headers={"Authorization": f"Bearer {world.devices['kiosk']}"})
                assert r.get_json()["verdict"] == "validated", r.get_json()
            cancelled = client.post("/api/v1/forms", json=form_body(invoice="AFTER-2"), headers=auth).get_json()
            assert client.post(f"/api/v1/forms/{cancelled['id']}/cancel", headers=auth).status_code == 200
            report = deliveries.deliver_due(only_new.extensions["db_sessionmaker"],
                                            deliveries.Settings(timeout_seconds=2, allow_private=True))
            assert report.delivered == 1
            [request] = receiver.requests
            assert SignatureCheck(secret).verify(request["body"], request["headers"])["data"]["form_id"] == \
                cancelled["id"]
        finally:
            only_new.extensions["db_engine"].dispose()
    old_only = Fernet(old_key.encode())
    for (sealed,) in raw_rows(database_url, "SELECT private_key FROM signing_keys WHERE private_key IS NOT NULL "
                                            "UNION ALL SELECT secret FROM webhooks"):
        with pytest.raises(InvalidToken):
            old_only.decrypt(sealed.encode())


KEPT_OUTSIDE = tuple(KEYS_KEPT_OUTSIDE)


@pytest.mark.parametrize("unset", [("SIGNING_KEY_ENCRYPTION_KEYS",), ("AUDIT_CHAIN_KEY", "PASSPORT_KEYS"), KEPT_OUTSIDE])
def test_production_refuses_to_start_without_the_keys_kept_outside_the_database(tmp_path, unset):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(ROOT),
               DATABASE_URL="postgresql+psycopg://taxfree@127.0.0.1:9/taxfree")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "api", "init-db"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"ConfigError: {', '.join(unset)} not set. In production (TAXFREE_ENV=production, or unset with a " \
           "PostgreSQL DATABASE_URL)" in result.stderr
    assert not (tmp_path / "instance").exists() or list((tmp_path / "instance").iterdir()) == []


def test_development_generates_the_keys_into_the_instance_folder(tmp_path, monkeypatch):
    for name in KEPT_OUTSIDE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    url = f"sqlite:///{tmp_path / 'dev.sqlite3'}"
    first = create_app({"DATABASE_URL": url})
    second = create_app({"DATABASE_URL": url})
    for name in KEPT_OUTSIDE:
        path = tmp_path / "instance" / name.lower()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert first.config[name] == second.config[name] == path.read_text().strip()
    for name in ("PASSPORT_KEYS", "SIGNING_KEY_ENCRYPTION_KEYS"):
        Fernet(first.config[name].encode())
    for one in (first, second):
        one.extensions["db_engine"].dispose()


# --- stored responses of idempotent requests ------------------------------------------------

def test_stored_idempotent_responses_hold_no_traveller_in_plain_text(app, world, database_url):
    people = [traveller(first_name=first, last_name=last, passport_number=f"XQ{n}7301946",
                        date_of_birth=f"19{70 + n}-0{n + 1}-2{n}")
              for n, (first, last) in enumerate([("Ottoline", "Featherstonehaugh"), ("Wilhelmina", "Marjoribanks"),
                                                 ("Peregrine", "Cholmondeley"), ("Araminta", "Auchinleck")])]

    def twice(who, path, body, key):
        first = world.post(who, path, body, headers={"Idempotency-Key": key})
        again = world.post(who, path, body, headers={"Idempotency-Key": key})
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert (again.status_code, again.get_json()) == (first.status_code, first.get_json())
        return first.get_json()

    single = twice("shop", "/api/v1/forms", form_body(invoice="IDEM-1", traveller=people[0]), "till-1")
    assert single["traveller"]["passport_number"] == people[0]["passport_number"]  # the caller gets it all
    batch = twice("shop", "/api/v1/forms/batch", {"forms": [
        form_body(invoice="IDEM-2", traveller=people[1]), form_body(invoice="IDEM-3", traveller=people[2])]},
        "till-batch-1")
    assert [x["status"] for x in batch["items"]] == [201, 201]
    watch = world.issue("shop", WATCH, traveller=people[3])
    assert world.scan("kiosk", watch["qr_payload"]).get_json()["verdict"] == "check_required"
    decided = twice("officer", f"/api/v1/forms/{watch['id']}/decision", {"outcome": "validated"}, "desk-1")
    assert decided["traveller"]["last_name"] == people[3]["last_name"]
    passport_scan = {"passport_number": people[3]["passport_number"], "passport_country": "CN", "scanned_at": None}
    twice("kiosk", "/api/v1/scans/passport", passport_scan, "kiosk-scan-1")

    stored = every_value(database_url, ["idempotency_records"])
    assert len(stored) == 4 * 6
    found = [value for who in people
             for value in (who["first_name"], who["last_name"], who["passport_number"], who["date_of_birth"])
             if any(value in cell for cell in stored)]
    assert found == []
    # Nor can a stored request hash be matched by hashing guessed passport
    # numbers, as a plain SHA-256 of the request could.
    # (A passport scan's key stands for the passport read, not for how the
    # scan travelled: api/resources/scans.py.)
    with app.app_context():
        loaded = PassportScanRequest().load(passport_scan)
    scanned = {"passport_number": loaded["passport_number"], "passport_country": loaded["passport_country"]}
    assert idempotency._legacy_hash(scanned) not in stored
    assert idempotency.request_hash(scanned, app.config["PASSPORT_HASH_KEY"].encode()) in stored


def test_a_retry_of_a_request_stored_before_the_hash_was_keyed_is_still_replayed(app):
    body = {"qr_payload": "x.y.z", "scanned_at": None}
    secret = app.config["PASSPORT_HASH_KEY"].encode()
    with app.test_request_context():
        session = database.session()
        idempotency.remember(session, "device:1", "old-key", idempotency._legacy_hash(body), 200, {"verdict": "x"})
        session.commit()

        record = idempotency.replay(session, "device:1", "old-key", idempotency.request_hash(body, secret), body)
        assert record is not None and record.response_body == {"verdict": "x"}
        other = {"qr_payload": "a.b.c", "scanned_at": None}
        with pytest.raises(Problem) as refused:
            idempotency.replay(session, "device:1", "old-key", idempotency.request_hash(other, secret), other)
        assert refused.value.status == 422


# --- upgrading a database with plain-text secrets ------------------------------------------

@pytest.fixture
def old_database(database_url):
    """An empty database of this backend, for migrating by hand: a file for
    SQLite, a schema of its own on PostgreSQL."""
    if database_url.startswith("sqlite"):
        yield database_url.replace("test.sqlite3", "old.sqlite3")
        return
    schema = f"old_{secrets.token_hex(4)}"
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{database_url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def _old_key(conn, kid, created, retired=None) -> Ed25519PrivateKey:
    private = qrtoken.new_private_key()
    conn.execute(text("INSERT INTO signing_keys (kid, private_key_pem, public_jwk, created_at, retired_at) "
                      "VALUES (:kid, :pem, :jwk, :created, :retired)"),
                 {"kid": kid, "pem": qrtoken.private_key_to_pem(private), "created": created, "retired": retired,
                  "jwk": json.dumps(qrtoken.public_jwk(private, kid))})
    return private


def _old_form(conn, form_id, deadline, key, kid):
    payload = qrtoken.sign_form_token(form_id, "NL859559001B01", datetime.combine(
        deadline + timedelta(days=1), datetime.min.time(), timezone.utc), key, kid)
    conn.execute(text(
        "INSERT INTO forms (id, retailer_id, status, invoice_number, purchase_date, first_name, last_name, "
        "passport_number, passport_country, passport_key, nationality, residence_country, date_of_birth, "
        "currency, total_cents, vat_cents, fee_cents, refund_cents, export_deadline, qr_payload, created_at, "
        "updated_at) VALUES (:id, 1, 'issued', :id, :bought, 'Mei', 'Chen', 'E1', 'CN', 'k', 'CN', 'CN', "
        "'1988-03-14', 'EUR', 12100, 2100, 0, 2100, :deadline, :payload, :at, :at)"),
        {"id": form_id, "bought": deadline - timedelta(days=90), "deadline": deadline, "payload": payload,
         "at": datetime(2026, 1, 1)})
    return payload


def test_upgrading_encrypts_the_secrets_there_and_brings_back_keys_forms_still_need(old_database, tmp_path):
    from alembic import command

    from api.cli import migrate
    from api.migrations import alembic_config

    command.upgrade(alembic_config(old_database), "0008")
    engine = create_engine(old_database)
    today = utcnow().date()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO retailers (id, vat_number, name, address, created_at) "
                          "VALUES (1, 'NL859559001B01', 'Watch House', '', '2026-01-01 00:00:00')"))
        gone = _old_key(conn, "2025-01-01-aaaaaa", datetime(2025, 1, 1), retired=datetime(2025, 6, 1))
        wrongly_retired = _old_key(conn, "2026-01-01-bbbbbb", datetime(2026, 1, 1), retired=datetime(2026, 2, 1))
        current = _old_key(conn, "2026-02-01-cccccc", datetime(2026, 2, 1))
        _old_form(conn, "NLOLD00001", date(2025, 4, 30), gone, "2025-01-01-aaaaaa")
        still_needed = _old_form(conn, "NLOLD00002", today + timedelta(days=60), wrongly_retired,
                                 "2026-01-01-bbbbbb")
        conn.execute(text("INSERT INTO webhooks (id, url, events, secret, retailer_id, created_by, created_at) "
                          "VALUES ('wh_1', 'https://example.com/h', '[]', 'whsec_plain', 1, 'user:1', :at)"),
                     {"at": datetime(2026, 1, 1)})
        conn.execute(text("INSERT INTO idempotency_records (owner, key, request_hash, status_code, response_body, "
                          "created_at) VALUES ('user:1', 'k', 'h', 201, :body, :at)"),
                     {"body": json.dumps({"traveller": {"passport_number": "E1"}}), "at": datetime(2026, 1, 1)})
    engine.dispose()
    with pytest.raises(RuntimeError, match="SIGNING_KEY_ENCRYPTION_KEYS"):
        migrate(old_database)  # the secrets there cannot be encrypted without the key

    migrate(old_database, os.environ["AUDIT_CHAIN_KEY"].encode(), os.environ["SIGNING_KEY_ENCRYPTION_KEYS"])

    backup = "\n".join(every_value(old_database))
    assert "PRIVATE KEY" not in backup and "whsec_plain" not in backup
    app = app_with(old_database)
    try:
        with app.test_request_context():
            session = database.session()
            keyring = app.extensions["keyring"]
            kid, signing = keyring.signing_key(session, keys.QR)
            assert kid == "2026-02-01-cccccc"  # keeps signing, now encrypted
            assert qrtoken.public_jwk(signing, kid) == qrtoken.public_jwk(current, kid)
            published = {k["kid"] for k in keyring.jwks(session)["keys"]}
            assert {"2026-02-01-cccccc", "2026-01-01-bbbbbb"} <= published
            assert "2025-01-01-aaaaaa" not in published
            assert qrtoken.verify_form_token(still_needed, keyring.keyset(session)).form_id == "NLOLD00002"
            at_kid, _ = keyring.signing_key(session, keys.ACCESS_TOKEN)  # made on first use
            assert at_kid.startswith("at-")
            from api.models import IdempotencyRecord, Webhook

            assert session.get(Webhook, "wh_1").secret != "whsec_plain"
            assert session.get(IdempotencyRecord, ("user:1", "k")).response_body == {
                "traveller": {"passport_number": "E1"}}  # written before: read as it is ...
        result = app.test_cli_runner().invoke(args=["reencrypt-personal-data"])
        assert result.exit_code == 0, result.output
        assert '"E1"' not in "\n".join(every_value(old_database, ["idempotency_records"]))  # ... until encrypted
        assert [kid for (kid,) in raw_rows(old_database, "SELECT qr_kid FROM forms ORDER BY id")] == [
            "2025-01-01-aaaaaa", "2026-01-01-bbbbbb"]
    finally:
        app.extensions["db_engine"].dispose()
