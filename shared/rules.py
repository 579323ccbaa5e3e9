"""Tax-free export rules per member state, kept as data, and the checks on them.

A ``RuleSet`` holds one member state's figures (minimum amount, VAT rates,
excluded goods, export period, time zone); the functions below apply any
ruleset, so adding a member state is a new entry in ``RULESETS``.

Dates are calendar dates in the ruleset's time zone; instants are aware UTC.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from shared.countries import is_country, is_eu
from shared.money import BP_PER_WHOLE, div_round_half_up, format_eur, vat_included_cents

# VAT Directive art. 147: a national minimum may not exceed EUR 175.
EU_CEILING_FOR_MINIMUM_CENTS = 17_500

CATEGORIES: tuple[str, ...] = (
    "clothing",
    "shoes",
    "electronics",
    "watches",
    "jewellery",
    "cosmetics",
    "food",
    "books",
    "toys",
    "leather_goods",
    "household",
    "other",
    "services",
    "tobacco",
    "medicines",
    "weapons",
    "cultural_goods",
    "vehicles",
)


@dataclass(frozen=True)
class RuleSet:
    """One member state's tax-free rules.

    ``min_total_inclusive`` says whether the minimum itself qualifies: NL asks
    for "at least EUR 50.00" (inclusive), FR for "more than EUR 100" (strict).
    """

    country: str
    min_total_cents: int
    min_total_inclusive: bool
    vat_rates_bp: frozenset[int]
    excluded_categories: frozenset[str]
    export_months: int = 3
    timezone: str = "Europe/Amsterdam"

    def __post_init__(self) -> None:
        if not is_country(self.country) or not is_eu(self.country):
            raise ValueError(f"rules are for an EU member state, not {self.country!r}")
        if not 0 <= self.min_total_cents <= EU_CEILING_FOR_MINIMUM_CENTS:
            raise ValueError(
                f"a national minimum must be between EUR 0.00 and "
                f"{format_eur(EU_CEILING_FOR_MINIMUM_CENTS)}"
            )
        if not self.vat_rates_bp or any(r < 0 for r in self.vat_rates_bp):
            raise ValueError("a ruleset needs at least one non-negative VAT rate")
        if self.export_months < 1:
            raise ValueError("the export period is at least one month")


_ONLY_SERVICES = frozenset({"services"})

RULESETS: dict[str, RuleSet] = {
    "NL": RuleSet("NL", 5_000, True, frozenset({2100, 900}), _ONLY_SERVICES),
    "FR": RuleSet(
        "FR",
        10_000,
        False,
        frozenset({2000, 1000, 550, 210}),
        frozenset(
            {"services", "tobacco", "medicines", "weapons", "cultural_goods", "vehicles"}
        ),
        timezone="Europe/Paris",
    ),
    "IT": RuleSet(
        "IT", 7_000, False, frozenset({2200, 1000, 500, 400}), _ONLY_SERVICES,
        timezone="Europe/Rome",
    ),
    "DE": RuleSet(
        "DE", 5_000, False, frozenset({1900, 700}), _ONLY_SERVICES,
        timezone="Europe/Berlin",
    ),
    # ES has no minimum; PT states none in our sources, so none is applied.
    "ES": RuleSet(
        "ES", 0, True, frozenset({2100, 1000, 400}), _ONLY_SERVICES,
        timezone="Europe/Madrid",
    ),
    "PT": RuleSet(
        "PT", 0, True, frozenset({2300, 1300, 600}), _ONLY_SERVICES,
        timezone="Europe/Lisbon",
    ),
}


def ruleset_for(country: str = "NL") -> RuleSet:
    """The rules of a member state; ``ValueError`` if none are configured."""
    try:
        return RULESETS[country]
    except (KeyError, TypeError):
        raise ValueError(f"no tax-free rules configured for {country!r}") from None


# --- export deadline -------------------------------------------------------

def export_deadline(purchase_date: date, months: int = 3) -> date:
    """The last day the goods may leave the EU.

    The end of the ``months``-th month after the month of purchase: bought
    26 May -> 31 Aug; bought 30 Nov 2027 -> 29 Feb 2028.
    """
    if months < 0:
        raise ValueError("months cannot be negative")
    year, month_index = divmod(purchase_date.month - 1 + months, 12)
    year += purchase_date.year
    month = month_index + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def _zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _require_aware(now_utc: datetime) -> None:
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("now_utc must be timezone-aware")


def deadline_end_utc(deadline: date, tz: str | tzinfo) -> datetime:
    """The instant the deadline day ends in ``tz`` (next day 00:00 local), in UTC.

    The local offset is that of the next day, so a deadline at the end of
    March (summer time) ends at 22:00 UTC and one at the end of October at
    23:00 UTC in Amsterdam.
    """
    # fold=0 picks the first 00:00 if it repeats and the pre-gap offset if it
    # is skipped; both give the real start of the next local day.
    next_midnight = datetime.combine(deadline + timedelta(days=1), time(0), tzinfo=_zone(tz))
    return next_midnight.astimezone(timezone.utc)


def local_today(now_utc: datetime, tz: str | tzinfo) -> date:
    """The calendar date in ``tz`` at the instant ``now_utc``."""
    _require_aware(now_utc)
    return now_utc.astimezone(_zone(tz)).date()


def is_expired(deadline: date, now_utc: datetime, tz: str | tzinfo) -> bool:
    """True once the local date in ``tz`` is after the deadline day."""
    return local_today(now_utc, tz) > deadline


# --- the customs desk after the deadline -------------------------------------
# A traveller sent to the desk before the deadline ended may be standing in
# the desk's queue when the day ends (the last flights leave around
# midnight): the goods were presented in time, the officer had not yet
# looked at them. A validation is therefore still accepted for a short grace
# period after the deadline, but only for a check opened before it ended;
# a traveller who first turns up after midnight gets none. The grace period
# is a setting (DESK_DECISION_GRACE_MINUTES).

def desk_closes_at(deadline: date, tz: str | tzinfo, grace: timedelta) -> datetime:
    """The last instant (exclusive) a check on a form with this ``deadline``
    may still be validated, if it was opened before the deadline ended;
    after it the check expires."""
    return deadline_end_utc(deadline, tz) + grace


def desk_may_validate(deadline: date, opened_at: datetime, decided_at: datetime,
                      tz: str | tzinfo, grace: timedelta) -> bool:
    """Whether customs may still validate (fully or in part) a form with
    this export ``deadline`` at a check opened at ``opened_at``, decided at
    ``decided_at``. Before the deadline ends: yes. After it: only for a
    check opened before the deadline ended, and only until ``grace`` after
    it ended. A rejection needs no such window."""
    _require_aware(opened_at)
    _require_aware(decided_at)
    ends = deadline_end_utc(deadline, tz)
    if decided_at < ends:
        return True
    return opened_at < ends and decided_at < ends + grace


# --- eligibility -----------------------------------------------------------

@dataclass(frozen=True)
class Line:
    """One purchased article as registered: prices include VAT."""

    quantity: int
    unit_price_cents: int
    vat_rate_bp: int
    category: str


@dataclass(frozen=True)
class Draft:
    """What eligibility needs to know about a form before it is issued."""

    purchase_date: date
    residence_country: str
    lines: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    """One broken rule. ``field`` is the dotted path in the JSON request body."""

    field: str
    code: str
    message: str


def check_eligibility(draft: Draft, ruleset: RuleSet, now_utc: datetime) -> list[Violation]:
    """Every rule the draft breaks under ``ruleset`` at ``now_utc``; empty if none.

    All violations are returned at once, so the retailer can fix the form in
    one go. Order: traveller, purchase date, each line, then the form total.
    """
    violations: list[Violation] = []
    violations += _residence_violations(draft.residence_country)
    violations += _date_violations(draft.purchase_date, ruleset, now_utc)
    for index, line in enumerate(draft.lines):
        violations += _line_violations(index, line, ruleset)
    violations += _total_violations(draft.lines, ruleset)
    return violations


def _residence_violations(country: str) -> list[Violation]:
    where = "traveller.residence_country"
    if not is_country(country):
        return [Violation(where, "unknown_country", f"{country!r} is not an ISO country code.")]
    if is_eu(country):
        return [
            Violation(
                where,
                "eu_residence",
                f"The traveller lives in {country}, inside the EU; "
                f"only travellers living outside the EU get a VAT refund.",
            )
        ]
    return []


def _date_violations(purchase_date: date, ruleset: RuleSet, now_utc: datetime) -> list[Violation]:
    today = local_today(now_utc, ruleset.timezone)
    if purchase_date > today:
        return [
            Violation(
                "purchase_date",
                "purchase_in_future",
                f"The purchase date {purchase_date.isoformat()} is after today "
                f"({today.isoformat()} in {ruleset.timezone}).",
            )
        ]
    deadline = export_deadline(purchase_date, ruleset.export_months)
    if today > deadline:
        return [
            Violation(
                "purchase_date",
                "deadline_passed",
                f"Goods bought on {purchase_date.isoformat()} had to leave the EU "
                f"by {deadline.isoformat()}; that deadline has passed.",
            )
        ]
    return []


def _line_violations(index: int, line: Line, ruleset: RuleSet) -> list[Violation]:
    at = f"items.{index}"
    found: list[Violation] = []
    if line.quantity < 1:
        found.append(
            Violation(f"{at}.quantity", "invalid_quantity",
                      f"Quantity {line.quantity} is not a positive whole number.")
        )
    if line.unit_price_cents < 1:
        found.append(
            Violation(f"{at}.unit_price_cents", "invalid_price",
                      f"Unit price {format_eur(line.unit_price_cents)} is not at least EUR 0.01.")
        )
    if line.vat_rate_bp not in ruleset.vat_rates_bp:
        rates = ", ".join(_percent(r) for r in sorted(ruleset.vat_rates_bp, reverse=True))
        found.append(
            Violation(f"{at}.vat_rate", "unknown_vat_rate",
                      f"VAT rate {_percent(line.vat_rate_bp)} is not a rate in "
                      f"{ruleset.country} ({rates}).")
        )
    if line.category in ruleset.excluded_categories:
        found.append(
            Violation(f"{at}.category", "excluded_category",
                      f"{line.category} cannot be refunded in {ruleset.country}.")
        )
    elif line.category not in CATEGORIES:
        # A misspelt category ("service") must not slip past the exclusions.
        found.append(
            Violation(f"{at}.category", "unknown_category",
                      f"{line.category!r} is not a known goods category.")
        )
    return found


def _total_violations(lines: list[Line], ruleset: RuleSet) -> list[Violation]:
    if not lines:
        return [Violation("items", "no_items", "A form needs at least one item.")]
    # Lines with an invalid quantity or price are already reported; their
    # numbers would only distort the total.
    total = sum(
        line.quantity * line.unit_price_cents
        for line in lines
        if line.quantity >= 1 and line.unit_price_cents >= 1
    )
    minimum = ruleset.min_total_cents
    if ruleset.min_total_inclusive and total < minimum:
        message = (f"The total {format_eur(total)} is under the minimum of "
                   f"{format_eur(minimum)} for {ruleset.country}.")
    elif not ruleset.min_total_inclusive and total <= minimum:
        message = (f"The total {format_eur(total)} must be more than "
                   f"{format_eur(minimum)} for {ruleset.country}.")
    else:
        return []
    return [Violation("items", "below_minimum", message)]


def _percent(rate_bp: int) -> str:
    whole, rest = divmod(rate_bp, 100)
    return f"{whole} %" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + " %"


# --- totals ----------------------------------------------------------------

@dataclass(frozen=True)
class Totals:
    """A form's amounts in cents; per-line lists follow the order of the lines."""

    total_cents: int
    vat_cents: int
    fee_cents: int
    refund_cents: int
    line_vat_cents: list[int]
    line_total_cents: list[int]


def compute_totals(lines: list[Line], fee_bp: int = 0) -> Totals:
    """Totals of a form; ``fee_bp`` is the intermediary's fee as a share of the VAT.

    VAT is computed and rounded per line, then summed, so the form's VAT is
    the sum of the VAT printed on its lines. The fee is rounded half up and
    the traveller gets the rest of the VAT.
    """
    if not 0 <= fee_bp <= BP_PER_WHOLE:
        raise ValueError("the fee is between 0 % and 100 % of the VAT")
    line_totals = [line.quantity * line.unit_price_cents for line in lines]
    line_vat = [
        vat_included_cents(total, line.vat_rate_bp)
        for total, line in zip(line_totals, lines)
    ]
    vat = sum(line_vat)
    fee = div_round_half_up(vat * fee_bp, BP_PER_WHOLE)
    return Totals(
        total_cents=sum(line_totals),
        vat_cents=vat,
        fee_cents=fee,
        refund_cents=vat - fee,
        line_vat_cents=line_vat,
        line_total_cents=line_totals,
    )
