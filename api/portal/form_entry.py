"""The new-form page's fields, turned into the API's request body.

The page posts flat fields named like the API's JSON paths
(``traveller.last_name``, ``items.2.vat_rate``), so an error the schema or
the rules report for a path lands next to the input of the same name. The
body then goes through the API's own schema (``FormCreate``) and the rules
(``shared.rules``), and finally ``api.services.forms.issue``, which checks
everything again: the portal explains, the service decides.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import marshmallow as ma

from shared import rules

from ..problems import flatten_errors
from ..schemas import FormCreate
from .i18n import country_name, money
from .i18n import gettext as _

TRAVELLER_FIELDS = (
    "first_name", "last_name", "passport_number", "passport_country", "nationality",
    "residence_country", "date_of_birth", "email",
)
LINE_FIELDS = ("description", "category", "quantity", "price", "vat_rate", "serial_number")
FORM_FIELDS = ("invoice_number", "purchase_date", "payment_method")
PAYMENT_METHODS = ("card", "cash", "mobile", "other")

# Made once: making a schema copies its fields, nested schemas too.
_FORM_CREATE = FormCreate()
_LINE_KEY = re.compile(r"^items\.(\d{1,3})\.([a-z_]+)$")
# Euros with an optional decimal comma or point and at most two decimals;
# no thousands separators, so "1.250" is never read as 1250.
_AMOUNT = re.compile(r"^(\d{1,9})(?:[.,](\d{1,2}))?$")


def parse_amount_cents(text: str) -> int | None:
    """``"12,5"`` -> 1250; None if ``text`` is not an amount in euros."""
    compact = text.replace("€", "").replace(" ", "").replace("\u00a0", "")
    match = _AMOUNT.match(compact)
    if not match:
        return None
    euros, decimals = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(euros) * 100 + int(decimals)


def blank_line(vat_rate: str = "21") -> dict[str, str]:
    return {"description": "", "category": "", "quantity": "1", "price": "", "vat_rate": vat_rate,
            "serial_number": ""}


@dataclass
class Entry:
    """What the clerk typed, and what is wrong with it."""

    values: dict[str, str]
    lines: list[dict[str, str]]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, path: str, message: str) -> None:
        messages = self.errors.setdefault(path, [])
        if message not in messages:
            messages.append(message)


def read(form, default_rate: str) -> Entry:
    """The posted fields; empty lines are dropped, the rest renumbered."""
    values = {name: form.get(name, "").strip() for name in FORM_FIELDS}
    for name in TRAVELLER_FIELDS:
        values[f"traveller.{name}"] = form.get(f"traveller.{name}", "").strip()
    rows: dict[int, dict[str, str]] = {}
    for key in form:
        match = _LINE_KEY.match(key)
        if match and match.group(2) in LINE_FIELDS:
            rows.setdefault(int(match.group(1)), blank_line(default_rate))[match.group(2)] = form.get(key, "").strip()
    op = form.get("op", "")
    if op.startswith("remove:") and op[7:].isdigit():
        rows.pop(int(op[7:]), None)
    lines = [row for _, row in sorted(rows.items()) if row["description"] or row["price"] or row["serial_number"]]
    return Entry(values, lines)


def _message(text: str) -> str:
    """The schema's English messages, in the page's language."""
    known = {
        "Missing data for required field.": _("Fill this in."),
        "Not a valid date.": _("Enter a date like 2026-03-14."),
        "Not a valid email address.": _("Enter an e-mail address like name@example.com."),
        "Use the Latin-script name as printed in the passport.":
            _("Use the Latin-script name as printed in the passport."),
        "Passport numbers are 5 to 20 capital letters and digits.":
            _("Passport numbers are 5 to 20 capital letters and digits."),
        "Not an ISO 3166-1 alpha-2 country code (e.g. CN, US).": _("Choose a country."),
        "Not a valid integer.": _("Enter a whole number."),
    }
    if text in known:
        return known[text]
    if text.startswith("Must be one of"):
        return _("Choose one of the options.")
    if text.startswith("Length must be between") or text.startswith("Shorter than"):
        return _("This is too long.")
    if text.startswith("Must be greater than or equal to") or text.startswith("Must be less than"):
        return _("This number is out of range.")
    return _(text)


def body_of(entry: Entry) -> dict | None:
    """The API request body (validated by the API's schema), or None with
    ``entry.errors`` filled in."""
    v = entry.values
    traveller = {name: v[f"traveller.{name}"] for name in TRAVELLER_FIELDS}
    traveller["passport_number"] = traveller["passport_number"].upper().replace(" ", "")
    traveller["email"] = traveller["email"] or None
    items = []
    for n, line in enumerate(entry.lines):
        price = parse_amount_cents(line["price"])
        if price is None:
            entry.add_error(f"items.{n}.price", _("Fill this in.") if not line["price"]
                            else _("Enter an amount in euros, like 12.50."))
        quantity = int(line["quantity"]) if line["quantity"].isdigit() else None
        if quantity is None:
            entry.add_error(f"items.{n}.quantity", _("Enter a whole number."))
        items.append({
            "description": line["description"],
            "category": line["category"],
            # A placeholder where the clerk's input was unreadable: the
            # error is already noted, the schema should not add "missing".
            "quantity": quantity if quantity is not None else 1,
            "unit_price_cents": price if price is not None else 1,
            "vat_rate": line["vat_rate"],
            "serial_number": line["serial_number"] or None,
        })
    if not items:
        entry.add_error("items", _("Add at least one line."))
    raw = {
        "invoice_number": v["invoice_number"],
        "purchase_date": v["purchase_date"],
        "payment_method": v["payment_method"] or None,
        "traveller": traveller,
        "items": items,
    }
    # Empty text means "not given": the schema then says what is missing.
    raw = _without_empty(raw)
    try:
        body = _FORM_CREATE.load(raw)
    except ma.ValidationError as invalid:
        for path, messages in flatten_errors(invalid.messages).items():
            path = re.sub(r"\.unit_price_cents$", ".price", path)
            for message in messages:
                entry.add_error(path, _message(message))
        return None
    return None if entry.errors else body


def _without_empty(value):
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def check_rules(entry: Entry, body: dict, ruleset: rules.RuleSet, now: datetime) -> bool:
    """The tax-free rules, with messages in the page's language; False (and
    ``entry.errors``) if the purchase does not qualify."""
    draft = rules.Draft(
        body["purchase_date"], body["traveller"]["residence_country"],
        [rules.Line(i["quantity"], i["unit_price_cents"], i["vat_rate_bp"], i["category"]) for i in body["items"]],
    )
    for violation in rules.check_eligibility(draft, ruleset, now):
        path = violation.field.replace(".unit_price_cents", ".price")
        entry.add_error(path, rule_message(violation, body, ruleset))
    return not entry.errors


def rule_message(violation: rules.Violation, body: dict, ruleset: rules.RuleSet) -> str:
    code = violation.code
    if code == "eu_residence":
        return eu_residence_message(body["traveller"]["residence_country"])
    if code == "purchase_in_future":
        return _("The purchase date cannot be after today.")
    if code == "deadline_passed":
        deadline = rules.export_deadline(body["purchase_date"], ruleset.export_months)
        return _("Goods bought on this date had to leave the EU by {deadline}; that deadline has passed.").format(
            deadline=deadline.isoformat())
    if code == "unknown_vat_rate":
        rates = ", ".join(f"{r // 100} %" for r in sorted(ruleset.vat_rates_bp, reverse=True))
        return _("Choose a VAT rate: {rates}.").format(rates=rates)
    if code == "excluded_category":
        return _("These goods cannot be sold tax-free.")
    if code == "below_minimum":
        total = sum(i["quantity"] * i["unit_price_cents"] for i in body["items"])
        return _("The total {total} is under the minimum of {minimum} per form.").format(
            total=money(total), minimum=money(ruleset.min_total_cents))
    if code == "no_items":
        return _("Add at least one line.")
    return _(violation.message)


def eu_residence_message(code: str) -> str:
    return _("{country} is in the EU: only travellers who live outside the EU can get a VAT refund.").format(
        country=country_name(code))

