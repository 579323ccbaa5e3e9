"""``make screenshots``: PNGs of every page, at desktop and phone widths,
in ``screenshots/`` (ignored by git), for reviewers to look at.

Starts the app on 127.0.0.1 with the demo data (``flask seed-demo``) plus a
busier day at the exit points, on a throwaway SQLite database, and drives
the Debian Chromium through Playwright. Nothing is downloaded.
"""
from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the checkout, whatever the venv's editable install points at

from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"  # the Debian package; see tests/portal/portal_support.py
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PASSWORD = "tax-free-demo-2026"


def build_app(workdir: Path):
    os.environ["INSTANCE_PATH"] = str(workdir / "instance")
    from api import create_app, database, keys
    from api.cli import migrate
    from api.demo import seed

    url = f"sqlite:///{workdir / 'screens.sqlite3'}"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                      "STATUS_LOOKUPS_PER_ADDRESS_PER_MINUTE": 1000})
    with app.app_context():
        session = database.session()
        keys.ensure_key(session)
        seed(session)
        busy_day(app, session)
    return app


def busy_day(app, session) -> None:
    """Scans spread over today at three exit points, so the dashboard's
    charts have something to show; plus a traveller whose name is markup."""
    from shared import qrtoken, risk, rules

    from api.auth import Principal
    from api.models import Device, ExitPoint, User
    from api.services import decisions, forms, scans

    rng = random.Random(7)
    keyring = app.extensions["keyring"]
    kid, key = keyring.signing_key(session)
    issuer = forms.Issuer(app.config["RULESET"], app.config["PASSPORT_HASH_KEY"].encode(), kid, key)
    shop_user = session.scalar(select(User).where(User.username == "shop"))
    shop = Principal("user", str(shop_user.id), "retailer", retailer_id=shop_user.retailer_id)
    officer_user = session.scalar(select(User).where(User.username == "officer"))
    officer = Principal("user", str(officer_user.id), "officer")
    devices = {}
    for point in session.scalars(select(ExitPoint)):
        device = Device(id=str(uuid.uuid4()), name=f"Kiosk {point.code}", kind="kiosk",
                        exit_point_id=point.id, token_hash="")
        session.add(device)
        session.flush()
        devices[point.code] = Principal("device", device.id, "device", exit_point_id=point.id,
                                        exit_point_code=point.code, device_kind="kiosk")
    keys = qrtoken.KeySet(keyring.jwks(session))
    policy = risk.RiskPolicy(sample_rate=0.08, seed="screens")
    zone = app.config["RULESET"].timezone
    now = datetime.now(timezone.utc)
    start = datetime.combine(rules.local_today(now, zone), datetime.min.time(), ZoneInfo(zone)).astimezone(timezone.utc)
    goods = [("Wool scarf", 8900, "clothing"), ("Sneakers", 15900, "shoes"), ("Headphones", 29900, "electronics"),
             ("Cookbook set", 6500, "books"), ("Perfume", 11900, "cosmetics"), ("Diving watch", 189000, "watches")]
    names = [("Wei", "Zhang"), ("Aiko", "Sato"), ("Liam", "Brown"), ("Fatima", "Khan"), ("Ana", "Silva")]
    minutes = int((now - start).total_seconds() // 60)
    for n in range(60):
        at = start + timedelta(minutes=rng.randint(6 * 60, max(6 * 60 + 1, minutes - 5)))
        if at >= now:
            at = now - timedelta(minutes=rng.randint(1, 30))
        first, last = rng.choice(names)
        items = []
        for description, price, category in rng.sample(goods, rng.randint(1, 3)):
            items.append({"description": description, "quantity": 1, "unit_price_cents": price,
                          "vat_rate_bp": 900 if category == "books" else 2100, "category": category,
                          "serial_number": None})
        body = {"invoice_number": f"AWH-BUSY-{n:03d}", "purchase_date": (at - timedelta(days=2)).date(),
                "traveller": {"first_name": first, "last_name": last, "passport_number": f"P{rng.randint(10**7, 10**8)}",
                              "passport_country": "CN", "nationality": "CN", "residence_country": "CN",
                              "date_of_birth": datetime(1980, 1, 1).date()},
                "items": items}
        form = forms.issue(session, shop, body, issuer, at - timedelta(days=2))
        point = rng.choices(["AMS", "RTM", "EIN"], weights=[6, 2, 2])[0]
        if n % 13 == 0:
            forms.cancel(session, shop, form, at - timedelta(hours=1))
        ctx = scans.ScanContext(app.config["RULESET"], policy, keys, app.config["RISK_SAMPLING_KEY"].encode())
        outcome = scans.scan(session, devices[point], form.qr_payload, ctx, at)
        if outcome.verdict == "check_required" and n % 3:
            decisions.decide(session, officer, form, "validated", [{"line": l.line, "present": True} for l in form.lines],
                             None, None, at + timedelta(minutes=rng.randint(4, 25)))
    fleet_today(session, devices, now)
    # A name that is markup must show as text everywhere.
    forms.issue(session, shop, {
        "invoice_number": "<b>INV</b>-XSS", "purchase_date": (now - timedelta(days=1)).date(),
        "traveller": {"first_name": "<img src=x>", "last_name": "<script>alert(1)</script>",
                      "passport_number": "X1234567", "passport_country": "US", "nationality": "US",
                      "residence_country": "US", "date_of_birth": datetime(1990, 5, 5).date()},
        "items": [{"description": "<script>alert(2)</script>", "quantity": 1, "unit_price_cents": 9900,
                   "vat_rate_bp": 2100, "category": "clothing", "serial_number": None}]}, issuer, now)
    session.commit()


def fleet_today(session, kiosks, now) -> None:
    """Heartbeats for the fleet page: most devices fine, one with a long
    offline queue, one whose clock is off, one silent, one never heard of."""
    from api.models import Device
    from api.services import fleet

    def beat(device_id, at, **changes):
        report = {"app_version": "0.1.0", "online_since": at - timedelta(hours=5), "queue_depth": 0,
                  "oldest_queued_at": None, "queue_writable": True, "camera_ok": True,
                  "free_disk_bytes": 24 * 10 ** 9, "device_clock": at}
        report.update(changes)
        fleet.record_heartbeat(session, device_id, report, at)

    def add(name, kind, exit_point):
        device = Device(id=str(uuid.uuid4()), name=name, kind=kind, exit_point_id=kiosks[exit_point].exit_point_id,
                        token_hash="", created_at=now - timedelta(days=20))
        session.add(device)
        session.flush()
        return device.id

    beat(kiosks["AMS"].id, now - timedelta(seconds=12))
    beat(add("Kiosk AMS D-gates 2", "kiosk", "AMS"), now - timedelta(seconds=40), queue_depth=34,
         oldest_queued_at=now - timedelta(minutes=9), free_disk_bytes=700 * 10 ** 6)
    beat(add("Tablet AMS E-gates", "tablet", "AMS"), now - timedelta(seconds=5), camera_ok=False)
    beat(add("Handheld AMS desk 1", "handheld", "AMS"), now - timedelta(seconds=20), camera_ok=None,
         device_clock=now - timedelta(seconds=20) + timedelta(minutes=4))
    beat(kiosks["RTM"].id, now - timedelta(minutes=14))
    beat(kiosks["EIN"].id, now - timedelta(seconds=30))
    add("Handheld RTM desk", "handheld", "RTM")


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/portal/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_load_state()


def take(page, out: Path, name: str, size: str) -> None:
    path = out / f"{name}-{size}.png"
    page.screenshot(path=str(path), full_page=True)
    print(path.relative_to(ROOT))


def fill_three_lines(page) -> None:
    page.fill("#invoice_number", "AWH-2026-0100")
    page.fill("#traveller-first_name", "Mei")
    page.fill("#traveller-last_name", "Chen")
    page.fill("#traveller-passport_number", "E99887766")
    page.select_option("#traveller-passport_country", "CN")
    page.fill("#traveller-date_of_birth", "1988-03-14")
    rows = [("Silk scarf", "clothing", "2", "49,95", "21"), ("Cookbook", "books", "1", "35.00", "9"),
            ("Chocolate box", "food", "3", "12.50", "9")]
    for n, (description, category, quantity, price, rate) in enumerate(rows):
        if n:
            page.click("#add-line")
        page.fill(f"#items-{n}-description", description)
        page.select_option(f"#items-{n}-category", category)
        page.fill(f"#items-{n}-quantity", quantity)
        page.fill(f"#items-{n}-price", price)
        page.select_option(f"#items-{n}-vat_rate", rate)


def main() -> int:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="taxfree-screens-") as tmp:
        app = build_app(Path(tmp))
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("api.requests").setLevel(logging.WARNING)
        server, thread, base = serve(app)
        with app.app_context():
            from api import database
            from api.models import Form

            session = database.session()
            validated = session.scalar(select(Form).where(Form.invoice_number == "AWH-2026-0002"))
            waiting = session.scalar(select(Form).where(Form.invoice_number == "AWH-2026-0003"))
            issued = session.scalar(select(Form).where(Form.invoice_number == "AWH-2026-0001"))
            xss = session.scalar(select(Form).where(Form.invoice_number == "<b>INV</b>-XSS"))
            ids = {"validated": (validated.id, validated.last_name), "waiting": (waiting.id, waiting.last_name),
                   "issued": (issued.id, issued.last_name), "xss": (xss.id, xss.last_name)}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for size, viewport in VIEWPORTS.items():
                    context = browser.new_context(viewport=viewport, locale="en-GB")
                    page = context.new_page()
                    page.on("dialog", lambda dialog: dialog.dismiss())
                    page.goto(f"{base}/portal/login")
                    take(page, out, "01-login", size)
                    login(page, base, "shop")
                    take(page, out, "02-forms-list", size)
                    page.goto(f"{base}/portal/forms?status=check_required")
                    take(page, out, "03-forms-list-filtered", size)
                    page.goto(f"{base}/portal/forms/new")
                    take(page, out, "04-new-form", size)
                    fill_three_lines(page)
                    take(page, out, "05-new-form-three-lines", size)
                    page.select_option("#traveller-residence_country", "DE")
                    page.click("#issue-button")
                    page.wait_for_load_state()
                    take(page, out, "06-new-form-errors", size)
                    page.select_option("#traveller-residence_country", "CN")
                    page.fill("#invoice_number", f"AWH-2026-01{size[0]}")
                    page.click("#issue-button")
                    page.wait_for_load_state()
                    take(page, out, "07-print-a4", size)
                    page.click("text=Receipt 80 mm")
                    page.wait_for_load_state()
                    take(page, out, "08-print-receipt", size)
                    page.goto(f"{base}/portal/forms/{ids['validated'][0]}")
                    take(page, out, "09-form-detail-validated", size)
                    page.goto(f"{base}/portal/forms/{ids['waiting'][0]}")
                    take(page, out, "10-form-detail-desk", size)
                    page.goto(f"{base}/portal/forms/{ids['xss'][0]}")
                    take(page, out, "11-form-detail-markup-name", size)
                    page.goto(f"{base}/portal/forms/{ids['xss'][0]}/print")
                    take(page, out, "12-print-markup-name", size)
                    page.goto(f"{base}/portal/forms?lang=nl")
                    take(page, out, "13-forms-list-dutch", size)
                    page.goto(f"{base}/portal/forms/new")
                    take(page, out, "14-new-form-dutch", size)
                    context.close()

                    context = browser.new_context(viewport=viewport, locale="en-GB")
                    page = context.new_page()
                    login(page, base, "officer")
                    take(page, out, "15-dashboard", size)
                    page.goto(f"{base}/dashboard?exit_point=AMS")
                    take(page, out, "16-dashboard-ams", size)
                    page.goto(f"{base}/dashboard/fleet")
                    take(page, out, "20-fleet", size)
                    page.goto(f"{base}/dashboard/fleet?lang=nl")
                    take(page, out, "21-fleet-dutch", size)
                    context.close()

                    context = browser.new_context(viewport=viewport, locale="en-GB")
                    page = context.new_page()
                    page.goto(f"{base}/status")
                    take(page, out, "17-status", size)
                    for name, lang in (("validated", "en"), ("waiting", "zh"), ("issued", "ar")):
                        page.goto(f"{base}/status?lang={lang}")
                        page.fill("#form_id", ids[name][0])
                        page.fill("#last_name", ids[name][1])
                        page.click("button[type=submit]")
                        page.wait_for_load_state()
                        take(page, out, f"18-status-{name}-{lang}", size)
                    page.goto(f"{base}/status?lang=en")
                    page.fill("#form_id", "NL0000000")
                    page.fill("#last_name", "Nobody")
                    page.click("button[type=submit]")
                    page.wait_for_load_state()
                    take(page, out, "19-status-error", size)
                    context.close()
                browser.close()
        finally:
            server.shutdown()
            thread.join(5)
            app.extensions["db_engine"].dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
