"""Builders for tests: request bodies, the World the `world` fixture
(tests/conftest.py) builds through the API itself, and ``rows`` to read
what a server under test committed."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import create_engine, event, text

PASSWORD = "correct-horse-battery"
TODAY = date.today()


def traveller(**overrides) -> dict:
    data = {
        "first_name": "Mei", "last_name": "Chen", "passport_number": "E12345678",
        "passport_country": "CN", "nationality": "CN", "residence_country": "CN",
        "date_of_birth": "1988-03-14",
    }
    data.update(overrides)
    return data


def item(unit_price_cents=12100, *, quantity=1, vat_rate=21, category="clothing", **extra) -> dict:
    return {"description": "Wool coat", "quantity": quantity, "unit_price_cents": unit_price_cents,
            "vat_rate": vat_rate, "category": category, **extra}


def form_body(*items, invoice="INV-1", purchase_date=None, **overrides) -> dict:
    body = {
        "invoice_number": invoice,
        "purchase_date": (purchase_date or TODAY - timedelta(days=1)).isoformat(),
        "traveller": traveller(),
        "items": list(items) or [item()],
    }
    body.update(overrides)
    return body


@dataclass
class World:
    client: object
    tokens: dict = field(default_factory=dict)
    devices: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)
    invoices: int = 0

    def auth(self, who: str) -> dict:
        token = self.tokens.get(who) or self.devices.get(who)
        return {"Authorization": f"Bearer {token}"}

    def login(self, username: str, password: str = PASSWORD) -> str:
        r = self.client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert r.status_code == 200, r.get_json()
        self.tokens[username] = r.get_json()["access_token"]
        return self.tokens[username]

    def post(self, who: str, path: str, json=None, **kw):
        return self.client.post(path, json=json, headers={**self.auth(who), **kw.pop("headers", {})}, **kw)

    def get(self, who: str, path: str, **kw):
        return self.client.get(path, headers=self.auth(who), **kw)

    def issue(self, who: str = "shop", *items, **overrides) -> dict:
        """Issue a valid form; returns the 201 body."""
        self.invoices += 1
        overrides.setdefault("invoice", f"INV-{self.invoices}")
        r = self.post(who, "/api/v1/forms", form_body(*items, **overrides))
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def issue_with_a_key_another_worker_made(self, app, **overrides) -> tuple[dict, str]:
        """Another worker (a second app on the same database) rotates the
        QR key and issues a form with its new key, which ``app`` has not
        loaded yet: the 201 body and the new kid. ``app``'s keys count as
        loaded two seconds ago: still fresh (kept for keys.CACHE_SECONDS),
        and past the second between the reloads an unknown kid may ask
        for."""
        import re

        from api import create_app

        other = create_app({k: app.config[k] for k in ("TESTING", "DATABASE_URL", "RISK_POLICY",
                                                      "PASSWORD_HASH_METHOD")})
        try:
            result = other.test_cli_runner().invoke(args=["rotate-keys", "--purpose", "qr"])
            assert result.exit_code == 0, result.output
            kid = re.match(r"New signing key (\S+)\.", result.output).group(1)
            self.invoices += 1
            overrides.setdefault("invoice", f"INV-{self.invoices}")
            r = other.test_client().post("/api/v1/forms", json=form_body(**overrides), headers=self.auth("shop"))
            assert r.status_code == 201, r.get_json()
        finally:
            other.extensions["db_engine"].dispose()
        app.extensions["keyring"]._loaded_at -= 2
        return r.get_json(), kid

    def sign_on(self, officer: str, exit_point: str) -> dict:
        """The officer goes on duty at ``exit_point``'s desk."""
        r = self.post(officer, "/api/v1/duty", {"exit_point": exit_point})
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def scan(self, device: str, qr_payload: str):
        return self.post(device, "/api/v1/scans", {"qr_payload": qr_payload})


def scanning_as(app, world, device: str, session):
    """The principal and the scan context with which the view calls the scan
    service for ``world``'s ``device``, in ``app``'s context."""
    from api.auth import Principal
    from api.models import Device
    from api.services import scans

    row = session.get(Device, world.ids[device])
    principal = Principal(kind="device", id=row.id, role="device", exit_point_id=row.exit_point_id,
                          exit_point_code=row.exit_point.code, device_kind=row.kind)
    context = scans.ScanContext(ruleset=app.config["RULESET"], policy=app.config["RISK"],
                                keys=app.extensions["keyring"].keyset(session),
                                sampling_key=app.config["RISK_SAMPLING_KEY"].encode())
    return principal, context


def scan_at(app, world, device: str, payload: str, now):
    """POST /scans at another moment: the scan service judged with ``now``,
    as the view calls it, for ``world``'s ``device``."""
    from api import database
    from api.services import scans

    with app.app_context():
        session = database.session()
        principal, context = scanning_as(app, world, device, session)
        outcome = scans.scan(session, principal, payload, context, now)
        session.commit()
    return outcome


def statements_of(app, action) -> list[str]:
    """The SQL statements ``app`` sends while ``action`` runs, each on one
    line."""
    sent = []

    def seen(_conn, _cursor, statement, *_args):
        sent.append(" ".join(statement.split()))

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return sent


def in_time(call, seconds: float = 10):
    """Run ``call`` in a thread; what it returned, or None if it had not
    returned within ``seconds`` (it is then left to finish)."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=call()), daemon=True)
    thread.start()
    thread.join(seconds)
    return result.get("value")


def rows(database_url: str, sql: str, **params) -> list:
    """The rows of one SQL query, on a connection of its own: what a
    server under test (another process) has committed."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()
