"""Demo data for ``make run``: a small, believable day at Schiphol.

Forms are taken through the real services, so every state they are in was
reached the way production reaches it, audit trail included.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import qrtoken, risk

from . import auth
from .auth import Principal
from .models import Device, ExitPoint, Intermediary, Retailer, User, utcnow
from .services import decisions, forms, scans

PASSWORD = "demo-password"
EXIT_POINTS = [
    ("AMS", "Amsterdam Airport Schiphol", "airport", "Departures 2, customs desk opposite the D gates"),
    ("EIN", "Eindhoven Airport", "airport", "Departures hall, next to security"),
    ("RTM", "Port of Rotterdam, Europoort ferry terminal", "seaport", "Terminal building, ground floor"),
]


def seed(session: Session) -> list[str]:
    """Load the demo data once; later runs only issue a fresh kiosk token.
    Returns lines to print for the person starting the demo."""
    ams = session.scalar(select(ExitPoint).where(ExitPoint.code == "AMS"))
    if ams is None:
        _seed_everything(session)
        ams = session.scalar(select(ExitPoint).where(ExitPoint.code == "AMS"))
    kiosk = session.scalar(select(Device).where(Device.name == "Demo kiosk D-gates"))
    token, token_hash = auth.new_device_token(kiosk.id)
    kiosk.token_hash = token_hash
    session.commit()
    # Kept for the README's walk-through; a demo secret, not a production one.
    token_file = Path(current_app.instance_path) / "demo-kiosk-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return [
        "Demo logins (password for all: %s):" % PASSWORD,
        "  admin      - administrator",
        "  shop       - retailer Amsterdam Watch House (NL859559001B01)",
        "  boekenkast - retailer De Boekenkast, no intermediary (NL000099998B57)",
        "  refunds    - intermediary Demo Tax Refund BV",
        "  officer    - customs officer",
        f"Demo kiosk at {ams.code} - device token (also in {token_file}):",
        f"  {token}",
    ]


def _seed_everything(session: Session) -> None:
    for code, name, kind, desk in EXIT_POINTS:
        session.add(ExitPoint(code=code, name=name, kind=kind, desk_location=desk))
    refunds = Intermediary(name="Demo Tax Refund BV", fee_bp=1500)
    session.add(refunds)
    session.flush()
    watches = Retailer(vat_number="NL859559001B01", name="Amsterdam Watch House",
                       address="Kalverstraat 1, 1012 NX Amsterdam", intermediary_id=refunds.id)
    books = Retailer(vat_number="NL000099998B57", name="De Boekenkast",
                     address="Spui 12, 1012 XA Amsterdam")
    session.add_all([watches, books])
    session.flush()
    users = {
        "admin": User(username="admin", role="admin"),
        "shop": User(username="shop", role="retailer", retailer_id=watches.id),
        "boekenkast": User(username="boekenkast", role="retailer", retailer_id=books.id),
        "refunds": User(username="refunds", role="intermediary", intermediary_id=refunds.id),
        "officer": User(username="officer", role="officer"),
    }
    for user in users.values():
        user.password_hash = auth.hash_password(PASSWORD)
        session.add(user)
    ams = session.scalar(select(ExitPoint).where(ExitPoint.code == "AMS"))
    kiosk = Device(id=str(uuid.uuid4()), name="Demo kiosk D-gates", kind="kiosk",
                   exit_point_id=ams.id, token_hash="")
    session.add(kiosk)
    session.flush()
    _seed_forms(session, users, kiosk, ams)
    session.commit()


def _traveller(first, last, passport, country, residence=None):
    return {
        "first_name": first, "last_name": last, "passport_number": passport,
        "passport_country": country, "nationality": country,
        "residence_country": residence or country, "date_of_birth": date(1985, 6, 15),
    }


def _item(description, price_cents, category, quantity=1, rate_bp=2100, serial=None):
    return {"description": description, "quantity": quantity, "unit_price_cents": price_cents,
            "vat_rate_bp": rate_bp, "category": category, "serial_number": serial}


def _seed_forms(session, users, kiosk, ams) -> None:
    app = current_app
    keyring = app.extensions["keyring"]
    kid, key = keyring.signing_key(session)
    issuer = forms.Issuer(app.config["RULESET"], app.config["PASSPORT_HASH_KEY"].encode(), kid, key)
    shop = Principal("user", str(users["shop"].id), "retailer", retailer_id=users["shop"].retailer_id)
    books = Principal("user", str(users["boekenkast"].id), "retailer",
                      retailer_id=users["boekenkast"].retailer_id)
    officer = Principal("user", str(users["officer"].id), "officer")
    device = Principal("device", kiosk.id, "device", exit_point_id=ams.id, exit_point_code="AMS",
                       device_kind="kiosk")
    now = utcnow()
    today = now.date()
    lenient = risk.RiskPolicy(sample_rate=0.0, check_eu_passport=False)
    strict = risk.RiskPolicy(sample_rate=0.0)
    keys = qrtoken.KeySet(keyring.jwks(session))

    def issue(who, number, traveller, items, days_ago=1):
        body = {"invoice_number": number, "purchase_date": today - timedelta(days=days_ago),
                "traveller": traveller, "items": items}
        return forms.issue(session, who, body, issuer, now)

    def scan(form, policy):
        ctx = scans.ScanContext(app.config["RULESET"], policy, keys)
        return scans.scan(session, device, form.qr_payload, ctx, now)

    chen = _traveller("Mei", "Chen", "E12345678", "CN")
    smith = _traveller("John", "Smith", "568432190", "US")
    tanaka = _traveller("Yuki", "Tanaka", "TR1234567", "JP")
    okafor = _traveller("Chidi", "Okafor", "A09876543", "NG", residence="GB")

    issue(shop, "AWH-2026-0001", chen, [_item("Wristwatch, steel", 249_00, "watches", serial="SN-88231")])
    issue(books, "BK-2026-0100", smith, [_item("Atlas of the Low Countries", 65_00, "books", rate_bp=900)])
    validated = issue(shop, "AWH-2026-0002", tanaka, [_item("Leather handbag", 399_00, "leather_goods")])
    scan(validated, lenient)
    refunded = issue(books, "BK-2026-0101", okafor, [_item("Cookbook set", 89_50, "books", rate_bp=900)])
    scan(refunded, lenient)
    forms.refund(session, books, refunded, refunded.vat_cents, now, now)
    waiting = issue(shop, "AWH-2026-0003", smith, [
        _item("Chronograph watch", 1_250_00, "watches", serial="SN-10077"),
        _item("Watch strap", 89_00, "clothing"),
    ])
    scan(waiting, strict)
    partial = issue(shop, "AWH-2026-0004", chen, [
        _item("Diving watch", 2_100_00, "watches", serial="SN-20001"),
        _item("Travel case", 120_00, "leather_goods"),
    ])
    scan(partial, strict)
    decisions.decide(session, officer, partial, "partially_validated",
                     [{"line": 1, "present": True}, {"line": 2, "present": False}], None, None, now)
    rejected = issue(shop, "AWH-2026-0005", okafor, [_item("Smartwatch", 450_00, "electronics")])
    scan(rejected, strict)
    decisions.decide(session, officer, rejected, "rejected", [{"line": 1, "present": False}],
                     "goods_not_presented", None, now)
    cancelled = issue(books, "BK-2026-0102", tanaka, [_item("Art book", 75_00, "books", rate_bp=900)])
    forms.cancel(session, books, cancelled, now)
    # Bought four months ago and never taken out of the EU.
    old = now - timedelta(days=125)
    forms.issue(session, shop, {
        "invoice_number": "AWH-2026-0000", "purchase_date": old.date(), "traveller": smith,
        "items": [_item("Pocket watch", 310_00, "watches")]}, issuer, old)
    forms.expire_overdue(session, app.config["RULESET"], now)
