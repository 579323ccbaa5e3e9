"""What the traveller's tests put into a phone: one passport (typed as its
two zone lines or kept as fields) and two open forms. No Kivy here: the app
subprocess (phone_process.py) uses it too."""
from __future__ import annotations

from datetime import date, timedelta

from shared.traveller_client import Form

# Mei Chen's passport: number, name and birth date are what "forget me" must erase.
ZONE_LINE1 = "P<CHNCHEN<<MEI<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<"
ZONE_LINE2 = "E123456782CHN8803148F3401011<<<<<<<<<<<<<<<6"
ZONE = f"{ZONE_LINE1}\n{ZONE_LINE2}"
PERSONAL = (b"E12345678", b"CHEN", b"MEI", b"1988-03-14", b"880314")


def passport():
    from traveller_app.wallet import Passport

    return Passport("E12345678", "CN", date(1988, 3, 14), date(2034, 1, 1), "MEI CHEN")


def open_forms() -> list[Form]:
    today = date.today()
    return [
        Form("NL7KQ3X9PD", "Watch House", today - timedelta(days=2), ("Wool coat",), 24900, 3880, "EUR",
             today + timedelta(days=80), "issued", "Refunds Inc"),
        Form("NL4TR8W2MC", "Bookshop", today - timedelta(days=1), ("Atlas", "Pens"), 8900, 700, "EUR",
             today + timedelta(days=85), "issued"),
    ]
