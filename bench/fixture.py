"""Test data for the benchmarks.

``build_world`` sets up a migrated database the way the test suite does,
through the API itself (in-process test client): an admin, exit points AMS
and RTM, an intermediary with a retailer, a retailer clerk, an officer and a
kiosk. ``load_forms`` then bulk-loads forms fast: COPY on PostgreSQL,
executemany on SQLite. Forms meant to be scanned are real: status issued,
bought yesterday, a keyed passport hash, totals from ``shared.rules`` and a
QR payload signed with the database's current signing key. History forms
(validated, refunded, expired, cancelled, some checked at the desk) only
fill the tables and their indexes; their QR payloads are dummies.
"""
from __future__ import annotations

import io
import json
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
from sqlalchemy import create_engine

from shared import formid, qrtoken, rules

PASSWORD = "bench-password-1"
SECRETS = {"SECRET_KEY": "bench-secret-key-" + "0" * 32, "PASSPORT_HASH_KEY": "bench-passport-key-" + "1" * 32,
           "AUDIT_CHAIN_KEY": "bench-audit-chain-key-" + "2" * 32,
           "PASSPORT_KEYS": "YmVuY2gtcGFzc3BvcnQta2V5cy1mZXJuZXQta2V5LTE=",
           "SIGNING_KEY_ENCRYPTION_KEYS": "YmVuY2gtc2lnbmluZy1rZXktZW5jcnlwdGlvbi1rZXk=",
           "RISK_SAMPLING_KEY": "bench-risk-sampling-key-" + "3" * 32}
# No scrypt for the handful of logins the bench does; no effect on the
# measured requests, which carry tokens.
PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
# The shop's webhook where the bench has one listen (its host does not
# resolve here: the API runs with WEBHOOKS_ALLOW_PRIVATE, which skips that
# check; nothing delivers, so its outbox rows stay).
LISTENING_WEBHOOK = {"url": "https://refunds.example.com/taxfree/webhooks",
                     "events": ["form.validated", "form.check_required"]}


def app_env(url: str, instance: Path) -> dict:
    """The environment the API runs with, in-process and under gunicorn."""
    return {"DATABASE_URL": url, "INSTANCE_PATH": str(instance),
            "PASSWORD_HASH_METHOD": PASSWORD_HASH_METHOD, **SECRETS}


@contextmanager
def environment(env: dict):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class World:
    url: str
    env: dict
    shop_token: str
    officer_token: str
    device_token: str
    retailer_id: int
    retailer_vat: str
    intermediary_id: int
    fee_bp: int
    exit_points: dict  # code -> id
    signing_kid: str
    signing_pem: str


def build_world(url: str, instance: Path) -> World:
    from api import create_app, database, keys
    from api.cli import migrate

    env = app_env(url, instance)
    migrate(url)
    with environment(env):
        app = create_app()
    try:
        with app.app_context():
            keys.ensure_key(database.session())
        runner = app.test_cli_runner()
        result = runner.invoke(args=["create-user", "root", "--role", "admin", "--password", PASSWORD])
        assert result.exit_code == 0, result.output
        client = app.test_client()

        def login(username):
            r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.get_json()
            return r.get_json()["access_token"]

        root = {"Authorization": f"Bearer {login('root')}"}

        def post(path, body):
            r = client.post(path, json=body, headers=root)
            assert r.status_code == 201, (path, r.get_json())
            return r.get_json()

        exit_points = {
            "AMS": post("/api/v1/exit-points", {"code": "AMS", "name": "Schiphol", "kind": "airport",
                                               "desk_location": "Departures 2"})["id"],
            "RTM": post("/api/v1/exit-points", {"code": "RTM", "name": "Rotterdam", "kind": "seaport"})["id"],
        }
        intermediary = post("/api/v1/intermediaries", {"name": "Refunds Inc", "fee_bp": 1000})
        retailer = post("/api/v1/retailers", {"vat_number": "NL859559001B01", "name": "Watch House",
                                              "intermediary_id": intermediary["id"]})
        post("/api/v1/users", {"username": "shop", "password": PASSWORD, "role": "retailer",
                               "retailer_id": retailer["id"]})
        post("/api/v1/users", {"username": "officer", "password": PASSWORD, "role": "officer"})
        device = post("/api/v1/devices", {"name": "kiosk-1", "kind": "kiosk", "exit_point": "AMS"})
        with app.app_context():
            kid, private = app.extensions["keyring"].signing_key(database.session(), keys.QR)
            pem = qrtoken.private_key_to_pem(private)
        return World(url, env, login("shop"), login("officer"), device["token"], retailer["id"],
                     retailer["vat_number"], intermediary["id"], intermediary["fee_bp"], exit_points, kid, pem)
    finally:
        app.extensions["db_engine"].dispose()


# --- bulk forms -----------------------------------------------------------------

FORM_COLUMNS = (
    "id", "retailer_id", "intermediary_id", "status", "invoice_number", "purchase_date",
    "payment_method", "refund_method", "first_name", "last_name", "passport_number",
    "passport_country", "passport_key", "nationality", "residence_country", "date_of_birth",
    "email", "currency", "total_cents", "vat_cents", "fee_cents", "refund_cents", "fee_bp",
    "export_deadline", "qr_payload", "qr_kid", "validated_at", "exit_point_id", "validated_total_cents",
    "validated_vat_cents", "validated_refund_cents", "refunded_cents", "refunded_at",
    "created_at", "updated_at",
)
LINE_COLUMNS = ("form_id", "line", "description", "quantity", "unit_price_cents", "vat_rate_bp",
                "vat_cents", "total_cents", "category", "serial_number", "present")
CHECK_COLUMNS = ("form_id", "exit_point_id", "status", "fired_rules", "opened_at", "decided_at",
                 "officer_id", "outcome", "reason_code", "note")

# Two line shapes; both below the risk engine's high-value threshold and in
# no watched category, so a fresh form is validated unless the random
# sample (5 % by default) picks it.
SHAPES = [
    [("Wool coat", 1, 12100, 2100, "clothing")],
    [("Leather bag", 1, 34900, 2100, "leather_goods"), ("Guide book", 2, 2500, 900, "books")],
]
SAMPLED = [{"code": "random_sample", "detail": "Picked by the random check."}]


# Each fixture form's traveller: a passport of its own (``passport_of``),
# the same country and date of birth for all; the traveller's app signs in
# with them (bench/traveller_load.py).
TRAVELLER_COUNTRY = "CN"
TRAVELLER_BIRTH = date(1988, 3, 14)


def passport_of(index: int) -> str:
    return f"E{index:09d}"


def form_id_of(index: int) -> str:
    """A well-formed, unique, random-looking form id for a fixture index (an
    odd multiplier is a bijection modulo 2**35)."""
    value = (index * 0x2F0A3B6D5 + 0x1234567) % 2**35
    body = "".join(formid.ALPHABET[(value >> (5 * k)) & 31] for k in range(7))
    return "NL" + body + formid.luhn_check_symbol(body)


def _form_rows(world: World, start: int, count: int, scannable: int, pending_checks: int, now: datetime):
    """(form, lines, check) for fixture indexes start..start+count-1: the
    first ``scannable`` are fresh issued forms, the next ``pending_checks``
    wait at the AMS desk, the rest are history from the last year."""
    import hashlib
    import hmac

    rng = random.Random(start)
    secret = world.env["PASSPORT_HASH_KEY"].encode()
    signing_key = qrtoken.private_key_from_pem(world.signing_pem)
    ruleset = rules.ruleset_for("NL")
    ams, rtm = world.exit_points["AMS"], world.exit_points["RTM"]
    shapes = [(shape, rules.compute_totals([rules.Line(q, p, bp, c) for _, q, p, bp, c in shape], world.fee_bp))
              for shape in SHAPES]
    for index in range(start, start + count):
        k = index - start
        fid = form_id_of(index)
        shape, totals = shapes[index % 2]
        passport = passport_of(index)
        if k < scannable:
            created = now - timedelta(minutes=rng.randrange(1, 24 * 60))
            status = "issued"
        else:
            created = now - timedelta(days=2 + rng.random() * 363)
            status = "check_required" if k < scannable + pending_checks else rng.choices(
                ("refunded", "validated", "expired", "cancelled", "rejected"), (70, 12, 10, 6, 2))[0]
        purchase = created.date() - timedelta(days=1) if k < scannable else created.date()
        deadline = rules.export_deadline(purchase, ruleset.export_months)
        if k < scannable:
            payload = qrtoken.sign_form_token(fid, world.retailer_vat,
                                              rules.deadline_end_utc(deadline, ruleset.timezone),
                                              signing_key, world.signing_kid)
        else:
            payload = "history." + fid
        validated = status in ("refunded", "validated")
        validated_at = created + timedelta(days=rng.randrange(0, 30)) if validated else None
        exit_point = ((ams if index % 3 else rtm) if validated or status == "rejected"
                      else ams if status == "check_required" else None)  # where its check waits
        form = {
            "id": fid, "retailer_id": world.retailer_id, "intermediary_id": world.intermediary_id,
            "status": status, "invoice_number": f"FX-{index:09d}", "purchase_date": purchase,
            "payment_method": "card", "refund_method": "card", "first_name": "Mei", "last_name": "Chen",
            "passport_number": passport, "passport_country": TRAVELLER_COUNTRY,
            "passport_key": hmac.new(secret, f"{TRAVELLER_COUNTRY}:{passport}".encode(), hashlib.sha256).hexdigest(),
            "nationality": "CN", "residence_country": "CN", "date_of_birth": TRAVELLER_BIRTH,
            "email": None, "currency": "EUR", "total_cents": totals.total_cents,
            "vat_cents": totals.vat_cents, "fee_cents": totals.fee_cents,
            "refund_cents": totals.refund_cents, "fee_bp": world.fee_bp, "export_deadline": deadline,
            "qr_payload": payload, "qr_kid": world.signing_kid if k < scannable else None,
            "validated_at": validated_at, "exit_point_id": exit_point,
            "validated_total_cents": totals.total_cents if validated else None,
            "validated_vat_cents": totals.vat_cents if validated else None,
            "validated_refund_cents": totals.refund_cents if validated else None,
            "refunded_cents": totals.refund_cents if status == "refunded" else None,
            "refunded_at": validated_at + timedelta(days=3) if status == "refunded" else None,
            "created_at": created, "updated_at": validated_at or created,
        }
        lines = [
            {"form_id": fid, "line": n, "description": d, "quantity": q, "unit_price_cents": p,
             "vat_rate_bp": bp, "vat_cents": totals.line_vat_cents[n - 1],
             "total_cents": totals.line_total_cents[n - 1], "category": c, "serial_number": None,
             "present": None}
            for n, (d, q, p, bp, c) in enumerate(shape, start=1)
        ]
        check = None
        if status == "check_required":
            check = {"form_id": fid, "exit_point_id": ams, "status": "pending", "fired_rules": SAMPLED,
                     "opened_at": now - timedelta(minutes=rng.randrange(1, 600)), "decided_at": None,
                     "officer_id": None, "outcome": None, "reason_code": None, "note": None}
        elif status == "rejected" or (validated and index % 12 == 0):
            check = {"form_id": fid, "exit_point_id": exit_point, "status": "decided",
                     "fired_rules": SAMPLED, "opened_at": validated_at or created,
                     "decided_at": (validated_at or created) + timedelta(minutes=9), "officer_id": None,
                     "outcome": "rejected" if status == "rejected" else "validated",
                     "reason_code": "goods_not_presented" if status == "rejected" else None, "note": None}
        yield form, lines, check


def _pg_text(value) -> str:
    """A value in COPY's text format (the fixture never holds tabs, newlines
    or backslashes). The most frequent types first: this runs 30 million
    times for a million forms."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if kind is datetime or kind is date:
        return value.isoformat()
    return json.dumps(value)


def _text_row(row: dict, columns) -> str:
    return "\t".join(_pg_text(row[c]) for c in columns) + "\n"


def _drop_secondary_indexes(cur) -> list[str]:
    """Drop the indexes of the loaded tables that back no constraint;
    returns their CREATE INDEX statements."""
    cur.execute("""
        SELECT indexname, indexdef FROM pg_indexes i
        WHERE schemaname = current_schema() AND tablename IN ('forms', 'form_lines', 'checks')
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""")
    indexes = cur.fetchall()
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in indexes]


def load_forms(world: World, start: int, count: int, *, scannable: int = 0, pending_checks: int = 0,
               now: datetime | None = None) -> list[str]:
    """Bulk-load ``count`` forms (indexes from ``start``); returns the QR
    payloads of the scannable ones."""
    now = now or datetime.now(timezone.utc)
    rows = _form_rows(world, start, count, scannable, pending_checks, now)
    payloads: list[str] = []
    if world.url.startswith("postgresql"):
        # One COPY per table. Forms stream to the server while Python makes
        # the rows, so PostgreSQL works on the other core meanwhile; lines and
        # checks are kept as text and sent after.
        lines, checks = io.StringIO(), io.StringIO()
        with psycopg.connect(world.url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            with conn.cursor() as cur:
                # A big load goes faster without the secondary indexes, built
                # again afterwards from their own definitions (constraints'
                # indexes stay).
                rebuild = _drop_secondary_indexes(cur) if count >= 100_000 else []
                with cur.copy(f"COPY forms ({', '.join(FORM_COLUMNS)}) FROM STDIN") as copy:
                    pending = []
                    for form, form_lines, check in rows:
                        pending.append(_text_row(form, FORM_COLUMNS))
                        for line in form_lines:
                            lines.write(_text_row(line, LINE_COLUMNS))
                        if check:
                            checks.write(_text_row(check, CHECK_COLUMNS))
                        if form["status"] == "issued":
                            payloads.append(form["qr_payload"])
                        if len(pending) == 2000:
                            copy.write("".join(pending))
                            pending.clear()
                    copy.write("".join(pending))
                for table, columns, buffer in (("form_lines", LINE_COLUMNS, lines),
                                               ("checks", CHECK_COLUMNS, checks)):
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        copy.write(buffer.getvalue())
                for definition in rebuild:
                    cur.execute(definition)
                conn.commit()
                cur.execute("ANALYZE forms")
                cur.execute("ANALYZE form_lines")
                cur.execute("ANALYZE checks")
        return payloads
    from api import create_app
    from api.models import Check, Form, FormLine

    # Through the model's column types, in an app context: passport numbers
    # are encrypted with the world's keys, as the API would store them.
    with environment(world.env):
        app = create_app()
    engine = create_engine(world.url)
    try:
        with app.app_context(), engine.begin() as conn:
            while True:
                batch = [next(rows, None) for _ in range(20_000)]
                batch = [b for b in batch if b is not None]
                if not batch:
                    break
                conn.execute(Form.__table__.insert(), [f for f, _, _ in batch])
                conn.execute(FormLine.__table__.insert(), [l for _, ls, _ in batch for l in ls])
                checks = [c for _, _, c in batch if c]
                if checks:
                    conn.execute(Check.__table__.insert(), checks)
                payloads += [f["qr_payload"] for f, _, _ in batch if f["status"] == "issued"]
    finally:
        engine.dispose()
        app.extensions["db_engine"].dispose()
    return payloads
