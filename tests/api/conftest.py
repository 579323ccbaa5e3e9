"""A small world for API tests, built through the API itself: an admin made
with the CLI, exit points, an intermediary, retailers, users of every role
and devices."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest

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

    def scan(self, device: str, qr_payload: str):
        return self.post(device, "/api/v1/scans", {"qr_payload": qr_payload})


@pytest.fixture
def world(client, runner) -> World:
    result = runner.invoke(args=["create-user", "root", "--role", "admin", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    w = World(client)
    w.login("root")

    def admin_post(path, body):
        r = w.post("root", path, body)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    admin_post("/api/v1/exit-points", {"code": "AMS", "name": "Schiphol", "kind": "airport",
                                       "desk_location": "Departures 2"})
    admin_post("/api/v1/exit-points", {"code": "RTM", "name": "Rotterdam", "kind": "seaport"})
    w.ids["intermediary"] = admin_post("/api/v1/intermediaries", {"name": "Refunds Inc", "fee_bp": 1000})["id"]
    w.ids["other_intermediary"] = admin_post("/api/v1/intermediaries", {"name": "Other Refunds"})["id"]
    w.ids["shop"] = admin_post("/api/v1/retailers", {
        "vat_number": "NL859559001B01", "name": "Watch House", "intermediary_id": w.ids["intermediary"]})["id"]
    w.ids["books"] = admin_post("/api/v1/retailers", {"vat_number": "NL000099998B57", "name": "Bookshop"})["id"]
    for username, role, extra in [
        ("shop", "retailer", {"retailer_id": w.ids["shop"]}),
        ("books", "retailer", {"retailer_id": w.ids["books"]}),
        ("refunds", "intermediary", {"intermediary_id": w.ids["intermediary"]}),
        ("other", "intermediary", {"intermediary_id": w.ids["other_intermediary"]}),
        ("officer", "officer", {}),
        ("officer2", "officer", {}),
    ]:
        admin_post("/api/v1/users", {"username": username, "password": PASSWORD, "role": role, **extra})
        w.login(username)
    for name, exit_point in [("kiosk", "AMS"), ("rtm-kiosk", "RTM")]:
        device = admin_post("/api/v1/devices", {"name": name, "kind": "kiosk", "exit_point": exit_point})
        w.devices[name] = device["token"]
        w.ids[name] = device["id"]
    return w
