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
from .services import decisions, duties, forms, scans

PASSWORD = "tax-free-demo-2026"
# Code, name, kind, where the desk is, opening hours (None: around the clock).
EXIT_POINTS = [
    ("AMS", "Amsterdam Airport Schiphol", "airport", "Departures 2, customs desk opposite the D gates", None),
    ("EIN", "Eindhoven Airport", "airport", "Departures hall, next to security", "05:00-23:30"),
    ("RTM", "Rotterdam Europoort, P&O ferry terminal", "seaport", "Terminal building, ground floor",
     "06:00-23:00"),
    ("HVH", "Hook of Holland, Stena Line ferry terminal", "seaport", "Terminal hall, next to passport control",
     "06:00-23:30"),
]

# The traveller's app: validation zones ([longitude, latitude] rectangles
# over the departure halls and terminal buildings) and a sensor post
# opposite each customs desk, with where it stands.
def _box(west: float, south: float, east: float, north: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


ZONES = {
    "AMS": [("Departures 1", _box(4.7620, 52.3098, 4.7660, 52.3118)),
            ("Departures 2", _box(4.7660, 52.3098, 4.7700, 52.3118)),
            ("Departures 3", _box(4.7700, 52.3098, 4.7740, 52.3118))],
    "HVH": [("Stena Line terminal", _box(4.1290, 51.9775, 4.1335, 51.9800))],
    "RTM": [("P&O terminal Europoort", _box(4.1340, 51.9495, 4.1380, 51.9525))],
}
POSTS = [  # id, exit point, latitude, longitude
    ("AMS-D1-01", "AMS", 52.3108, 4.7640),
    ("AMS-D2-01", "AMS", 52.3108, 4.7683),
    ("AMS-D2-02", "AMS", 52.3112, 4.7690),
    ("AMS-D3-01", "AMS", 52.3108, 4.7720),
    ("HVH-T1-01", "HVH", 51.9788, 4.1312),
    ("RTM-T1-01", "RTM", 51.9510, 4.1360),
]
# Daily ferries to Great Britain (outside the EU): port, operator, route,
# destination port and code, local departure time.
SAILINGS = [
    ("HVH", "Stena Line", "Hook of Holland - Harwich", "Harwich", "HAR", "GB", (14, 30)),
    ("HVH", "Stena Line", "Hook of Holland - Harwich", "Harwich", "HAR", "GB", (22, 0)),
    ("RTM", "P&O Ferries", "Rotterdam Europoort - Hull", "Hull", "HUL", "GB", (21, 0)),
]
SAILING_DAYS = 7
# Whom to sign in as in the traveller's app (typed as number, country, birth
# date and any expiry date to come): a book to validate, a watch waiting at the desk.
DEMO_PHONE_TRAVELLER = ("John Smith's passport: number 568432190, issuing country US, "
                        "born 1985-06-15, any expiry date to come")


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
    posts_file = _seed_presence(session)
    session.commit()
    return [
        "Demo logins (password for all: %s):" % PASSWORD,
        "  admin      - administrator",
        "  shop       - retailer Amsterdam Watch House (NL859559001B01)",
        "  boekenkast - retailer De Boekenkast, no intermediary (NL000099998B57)",
        "  refunds    - intermediary Demo Tax Refund BV",
        "  officer    - customs officer",
        f"Demo kiosk at {ams.code} - device token (also in {token_file}):",
        f"  {token}",
        f"Traveller's app: zones at AMS, HVH and RTM; sensor posts {', '.join(p[0] for p in POSTS)}",
        f"  (their secrets, to simulate the posts: {posts_file}); sailings for the next {SAILING_DAYS} days.",
        f"  `make traveller`: sign in with {DEMO_PHONE_TRAVELLER}.",
    ]


def _seed_presence(session: Session) -> Path:
    """Zones, sensor posts and a week of sailings, added to what is missing
    (also to a demo database made before the app existed). Writes the demo
    posts' secrets to the instance folder for a simulated post (``make
    traveller``): a demo secret, like the demo kiosk's token."""
    import json
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from .models import Sailing, SensorPost, ValidationZone
    from .services import exit_point_presence as places

    points = {p.code: p for p in session.scalars(select(ExitPoint))}
    for code, name, kind, desk, hours in EXIT_POINTS:
        if code not in points:
            points[code] = ExitPoint(code=code, name=name, kind=kind, desk_location=desk, opening_hours=hours)
            session.add(points[code])
    session.flush()
    for code, zones in ZONES.items():
        if not places.zones_of(session, points[code].id):
            for name, polygon in zones:
                session.add(ValidationZone(exit_point_id=points[code].id, name=name, polygon=polygon))
    secrets_out = []
    for post_id, code, lat, lon in POSTS:
        post = session.get(SensorPost, post_id)
        secret = post.secret if post is not None else places.add_post(session, points[code], post_id)[1]
        secrets_out.append({"post_id": post_id, "exit_point": code, "secret": secret, "lat": lat, "lon": lon})
    zone = ZoneInfo(current_app.config["RULESET"].timezone)
    today = utcnow().astimezone(zone).date()
    for day in range(SAILING_DAYS):
        for code, operator, route, port, port_code, country, (hour, minute) in SAILINGS:
            departs = datetime.combine(today + timedelta(days=day), time(hour, minute), zone)
            if session.get(Sailing, places.sailing_id(code, port_code, departs, zone)) is None:
                places.add_sailing(session, points[code], operator=operator, route=route, destination_port=port,
                                   destination_code=port_code, destination_country=country, departs_at=departs,
                                   zone=zone)
    path = Path(current_app.instance_path) / "demo-sensor-posts.json"
    path.write_text(json.dumps({"step_seconds": current_app.config["PRESENCE"].step_seconds,
                                "posts": secrets_out}, indent=1) + "\n")
    path.chmod(0o600)
    return path


def _seed_everything(session: Session) -> None:
    for code, name, kind, desk, hours in EXIT_POINTS:
        session.add(ExitPoint(code=code, name=name, kind=kind, desk_location=desk, opening_hours=hours))
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
        ctx = scans.ScanContext(app.config["RULESET"], policy, keys, app.config["RISK_SAMPLING_KEY"].encode())
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
    # The demo officer is on duty at the Schiphol desk.
    duties.sign_on(session, officer, "AMS", now)
    desk = decisions.DeskRules.from_config(app.config)
    decisions.decide(session, officer, partial, "partially_validated",
                     [{"line": 1, "present": True}, {"line": 2, "present": False}], None, None, now, desk=desk)
    rejected = issue(shop, "AWH-2026-0005", okafor, [_item("Smartwatch", 450_00, "electronics")])
    scan(rejected, strict)
    decisions.decide(session, officer, rejected, "rejected", [{"line": 1, "present": False}],
                     "goods_not_presented", None, now, desk=desk)
    cancelled = issue(books, "BK-2026-0102", tanaka, [_item("Art book", 75_00, "books", rate_bp=900)])
    forms.cancel(session, books, cancelled, now)
    # Bought four months ago and never taken out of the EU.
    old = now - timedelta(days=125)
    forms.issue(session, shop, {
        "invoice_number": "AWH-2026-0000", "purchase_date": old.date(), "traveller": smith,
        "items": [_item("Pocket watch", 310_00, "watches")]}, issuer, old)
    forms.expire_overdue(session, app.config["RULESET"], now, grace=desk.grace)
