"""Names of codes (statuses, goods categories, payment methods, risk rules,
rejection reasons) in the page's language."""
from __future__ import annotations

from .i18n import gettext as _


def status_labels() -> dict[str, str]:
    return {
        "issued": _("Issued"),
        "check_required": _("Check at customs desk"),
        "validated": _("Validated"),
        "partially_validated": _("Partly validated"),
        "rejected": _("Refused by customs"),
        "cancelled": _("Cancelled"),
        "expired": _("Expired"),
        "refunded": _("Refunded"),
    }


CATEGORY_TEXT = {
    "clothing": "Clothing", "shoes": "Shoes", "electronics": "Electronics", "watches": "Watches",
    "jewellery": "Jewellery", "cosmetics": "Cosmetics", "food": "Food", "books": "Books", "toys": "Toys",
    "leather_goods": "Leather goods", "household": "Household goods", "other": "Other goods",
    "services": "Services", "tobacco": "Tobacco", "medicines": "Medicines", "weapons": "Weapons",
    "cultural_goods": "Cultural goods", "vehicles": "Vehicles",
}


def category_labels(english: bool = False) -> dict[str, str]:
    return {code: text if english else _(text) for code, text in CATEGORY_TEXT.items()}


def payment_labels() -> dict[str, str]:
    return {"card": _("Card"), "cash": _("Cash"), "mobile": _("Mobile payment"), "other": _("Other")}


RULE_TEXT = {
    "high_value": "High value",
    "watched_category": "Watched goods",
    "random_sample": "Random check",
    "retailer_watchlist": "Shop on watch list",
    "traveller_watchlist": "Traveller on watch list",
    "frequent_traveller": "Many forms in a few days",
    "eu_passport_holder": "EU passport holder",
    # The traveller's app (shared/presence.py, shared/risk.py) and the desk.
    "app_no_fresh_beacon": "App: no current sensor post token",
    "app_beacon_invalid": "App: forged or foreign sensor post token",
    "app_outside_zone": "App: outside the validation zone",
    "app_gps_accuracy": "App: GPS not accurate enough",
    "app_gps_stale": "App: GPS position too old",
    "app_mock_location": "App: simulated location",
    "app_first_use": "App: first use of this phone",
    "app_many_passports": "App: several passports on one phone",
    "desk_walk_in": "Came straight to the desk",
}


def rule_label(code: str) -> str:
    return _(RULE_TEXT[code]) if code in RULE_TEXT else code


REASON_TEXT = {
    "goods_not_presented": "Goods not shown",
    "goods_used": "Goods used",
    "eu_residence": "Lives in the EU",
    "deadline_passed": "Export deadline passed",
    "passport_mismatch": "Passport does not match",
    "other": "Other reason",
}


def fleet_reason(reason) -> str:
    """Why a device is amber or red (api/services/fleet.py), in the page's language."""
    value = reason.figure
    texts = {
        "never_seen": _("No heartbeat since it was registered ({value})."),
        "silent": _("No heartbeat for {value}."),
        "queue_depth": _("{value} item(s) waiting in its offline queue."),
        "queue_old": _("The oldest item in its offline queue has waited {value}."),
        "queue_unwritable": _("Its offline queue cannot be written (disk full?): travellers are sent to the desk."),
        "camera": _("The camera is not working."),
        "disk_low": _("Only {value} of disk free."),
        "clock_skew": _("Its clock is {value} off."),
    }
    return texts[reason.code].format(value=value) if reason.code in texts else reason.message
