"""The risk engine: which scanned forms need a physical check at the desk.

The policy is data (``RiskPolicy``, loadable from JSON); ``assess`` is a pure
function of the scan's facts and the policy. Every rule is evaluated, in a
fixed order, so the officer sees all reasons and a re-scan gives the same
answer. Random sampling is a keyed hash of the form id for the same reason:
the key (``sampling_key``) is a server secret kept out of the policy, so
nobody who reads the policy, the code or a form can tell which forms the
random check will pick.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, fields
from typing import Literal

from shared.countries import is_eu
from shared.money import format_eur
from shared.presence import PresenceReport

VALIDATED = "validated"
CHECK_REQUIRED = "check_required"
Verdict = Literal["validated", "check_required"]

_SET_FIELDS = ("watched_categories", "retailer_watchlist", "traveller_watchlist")


@dataclass(frozen=True)
class RiskPolicy:
    """When a form must be checked at the desk. ``high_value_cents=None`` turns
    the value rule off; ``sample_rate`` is the share of forms picked at random."""

    high_value_cents: int | None = 100_000
    watched_categories: frozenset[str] = frozenset({"watches", "jewellery", "electronics"})
    sample_rate: float = 0.05
    retailer_watchlist: frozenset[str] = frozenset()
    traveller_watchlist: frozenset[str] = frozenset()  # opaque traveller keys
    frequent_forms: int = 5
    frequent_days: int = 7
    check_eu_passport: bool = True
    # The traveller's app: an install first seen less than this many minutes
    # ago is a first use; this many other passports validated from the same
    # install within the window is one phone doing it for many people.
    app_new_install_minutes: int = 30
    app_other_passports: int = 1
    app_passports_window_minutes: int = 60

    def __post_init__(self) -> None:
        if self.high_value_cents is not None and self.high_value_cents < 0:
            raise ValueError("high_value_cents cannot be negative")
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError("sample_rate is between 0 and 1")
        if self.frequent_forms < 1 or self.frequent_days < 1:
            raise ValueError("frequent_forms and frequent_days are at least 1")
        if self.app_new_install_minutes < 0 or self.app_other_passports < 1 \
                or self.app_passports_window_minutes < 1:
            raise ValueError("app_new_install_minutes >= 0, app_other_passports and "
                             "app_passports_window_minutes >= 1")
        for name in _SET_FIELDS:
            if not isinstance(getattr(self, name), frozenset):
                raise TypeError(f"{name} must be a frozenset")


@dataclass(frozen=True)
class ScanFacts:
    """What is known about a form when it is scanned.

    ``forms_by_traveller_recent`` is counted by the caller over the last
    ``policy.frequent_days`` days, this form included. ``traveller_key`` and
    ``passport_country`` are None when the traveller is not identified yet.
    """

    form_id: str
    total_cents: int
    categories: frozenset[str]
    retailer_vat: str
    traveller_key: str | None
    passport_country: str | None
    forms_by_traveller_recent: int
    app: AppFacts | None = None  # only for a validation from the traveller's app


@dataclass(frozen=True)
class AppFacts:
    """What a validation from the traveller's own phone adds: the weighed
    presence evidence (``shared.presence``) and the phone's history."""

    presence: PresenceReport
    install_age_minutes: float  # since the install first signed in
    other_passports_recent: int  # other passports validated from it in the policy's window


@dataclass(frozen=True)
class FiredRule:
    """A risk rule that asks for a check, with a detail for the officer."""

    code: str
    detail: str


@dataclass(frozen=True)
class Assessment:
    """The outcome of a scan: validated now, or a check at the desk and why."""

    verdict: Verdict
    fired: tuple[FiredRule, ...]


def sample_point(key: bytes, form_id: str) -> float:
    """The form's place in [0, 1) for the random check: HMAC-SHA256 of the
    form id under ``key``, its first 64 bits as a fraction. Without the key
    the place cannot be computed; with it, it never changes."""
    if not key:
        raise ValueError("the random check needs a secret sampling key")
    digest = hmac.new(key, form_id.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_sampled(key: bytes, form_id: str, sample_rate: float) -> bool:
    """Whether the random check picks this form; the same inputs always agree."""
    return sample_point(key, form_id) < sample_rate


def assess(facts: ScanFacts, policy: RiskPolicy, sampling_key: bytes) -> Assessment:
    """Apply every rule of ``policy`` to ``facts``; any fired rule means a
    check. ``sampling_key`` is the secret behind the random check."""
    fired: list[FiredRule] = []
    if policy.high_value_cents is not None and facts.total_cents > policy.high_value_cents:
        fired.append(FiredRule(
            "high_value",
            f"Total {format_eur(facts.total_cents)} is above "
            f"{format_eur(policy.high_value_cents)}.",
        ))
    watched = sorted(facts.categories & policy.watched_categories)
    if watched:
        fired.append(FiredRule("watched_category", "Watched goods: " + ", ".join(watched) + "."))
    if is_sampled(sampling_key, facts.form_id, policy.sample_rate):
        fired.append(FiredRule("random_sample", "Picked by the random check."))
    if facts.retailer_vat in policy.retailer_watchlist:
        fired.append(FiredRule(
            "retailer_watchlist", f"Retailer {facts.retailer_vat} is on the watchlist."
        ))
    if facts.traveller_key is not None and facts.traveller_key in policy.traveller_watchlist:
        fired.append(FiredRule("traveller_watchlist", "Traveller is on the watchlist."))
    if facts.forms_by_traveller_recent >= policy.frequent_forms:
        fired.append(FiredRule(
            "frequent_traveller",
            f"{facts.forms_by_traveller_recent} forms in the last {policy.frequent_days} days "
            f"(check from {policy.frequent_forms}).",
        ))
    if policy.check_eu_passport and is_eu(facts.passport_country):
        fired.append(FiredRule(
            "eu_passport_holder",
            f"Passport issued by {facts.passport_country}, an EU country: "
            f"ask for proof of residence outside the EU.",
        ))
    if facts.app is not None:
        fired.extend(app_rules(facts.app, policy))
    verdict: Verdict = CHECK_REQUIRED if fired else VALIDATED
    return Assessment(verdict, tuple(fired))


def app_rules(app: AppFacts, policy: RiskPolicy) -> list[FiredRule]:
    """The rules of the app channel: a phone's evidence is weighed, never
    trusted. Weak or contradictory presence evidence, a phone used for the
    first time, or one phone validating for several passports, each sends
    the traveller to the desk."""
    fired = [FiredRule(code, detail) for code, detail in app.presence.problems]
    if app.install_age_minutes < policy.app_new_install_minutes:
        fired.append(FiredRule(
            "app_first_use",
            f"First use of this phone: the app was set up {int(app.install_age_minutes)} min ago "
            f"(check under {policy.app_new_install_minutes} min).",
        ))
    if app.other_passports_recent >= policy.app_other_passports:
        fired.append(FiredRule(
            "app_many_passports",
            f"This phone validated forms of {app.other_passports_recent} other passport(s) in the last "
            f"{policy.app_passports_window_minutes} min.",
        ))
    return fired


def policy_to_dict(policy: RiskPolicy) -> dict:
    """The policy as JSON-friendly data (sets become sorted lists)."""
    data = {}
    for f in fields(RiskPolicy):
        value = getattr(policy, f.name)
        data[f.name] = sorted(value) if f.name in _SET_FIELDS else value
    return data


def policy_from_dict(data: dict) -> RiskPolicy:
    """A policy from configuration; missing keys keep their defaults.

    Unknown keys raise ``ValueError`` so a misspelt setting is not ignored.
    """
    if "seed" in data:
        # The old, public seed: the random check's secret is a server setting
        # (RISK_SAMPLING_KEY), never part of a policy that may be shown.
        raise ValueError("'seed' is no longer a risk policy setting: the random check uses the "
                         "server's secret RISK_SAMPLING_KEY")
    known = {f.name for f in fields(RiskPolicy)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown risk policy settings: {', '.join(unknown)}")
    values = dict(data)
    for name in _SET_FIELDS:
        if name in values:
            if isinstance(values[name], str):
                raise TypeError(f"{name} must be a list of strings, not a string")
            values[name] = frozenset(values[name])
    return RiskPolicy(**values)
