"""Tax-free rules: residence, minimum amount, goods, VAT rates, export deadline."""
from dataclasses import FrozenInstanceError, replace
from datetime import date, datetime, timedelta, timezone

import pytest

from shared.countries import EU_MEMBER_STATES, country_name, is_country, is_eu
from shared.rules import (
    CATEGORIES,
    RULESETS,
    Draft,
    Line,
    RuleSet,
    Totals,
    Violation,
    check_eligibility,
    compute_totals,
    deadline_end_utc,
    export_deadline,
    is_expired,
    local_today,
    ruleset_for,
)

AMSTERDAM = "Europe/Amsterdam"
NL = RULESETS["NL"]
FR = RULESETS["FR"]
# 12:00 in Amsterdam (summer time) on 1 June 2026.
NOON_1_JUNE_2026 = datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def shirt(price_cents=6_000, quantity=1, rate_bp=2100, category="clothing"):
    return Line(quantity, price_cents, rate_bp, category)


def draft(*lines, bought=date(2026, 6, 1), residence="US"):
    return Draft(bought, residence, list(lines) if lines else [shirt()])


def codes(violations):
    return [(v.field, v.code) for v in violations]


# --- countries -------------------------------------------------------------

def test_the_eu_has_27_member_states_with_greece_as_gr():
    assert len(EU_MEMBER_STATES) == 27
    assert "GR" in EU_MEMBER_STATES
    assert "EL" not in EU_MEMBER_STATES
    assert "GB" not in EU_MEMBER_STATES
    assert all(is_country(code) for code in EU_MEMBER_STATES)


@pytest.mark.parametrize("code", ["CH", "NO", "GB", "US", "CN", "IS"])
def test_neighbours_and_far_countries_are_outside_the_eu(code):
    assert is_country(code)
    assert not is_eu(code)


@pytest.mark.parametrize("code", ["gb", "Gb", "XX", "EL", "GBR", "", None, 44])
def test_only_upper_case_iso_alpha_2_codes_are_countries(code):
    assert not is_country(code)


def test_country_names_are_english_short_names():
    assert country_name("CH") == "Switzerland"
    assert country_name("GR") == "Greece"
    with pytest.raises(ValueError):
        country_name("XX")


# --- rulesets as data ------------------------------------------------------

def test_netherlands_rules_are_at_least_eur_50_with_rates_21_and_9_and_no_services():
    assert ruleset_for() == RuleSet(
        country="NL",
        min_total_cents=5_000,
        min_total_inclusive=True,
        vat_rates_bp=frozenset({2100, 900}),
        excluded_categories=frozenset({"services"}),
        export_months=3,
        timezone=AMSTERDAM,
    )


@pytest.mark.parametrize(
    ("country", "minimum", "inclusive", "rates", "tz"),
    [
        ("FR", 10_000, False, {2000, 1000, 550, 210}, "Europe/Paris"),
        ("IT", 7_000, False, {2200, 1000, 500, 400}, "Europe/Rome"),
        ("DE", 5_000, False, {1900, 700}, "Europe/Berlin"),
        ("ES", 0, True, {2100, 1000, 400}, "Europe/Madrid"),
        ("PT", 0, True, {2300, 1300, 600}, "Europe/Lisbon"),
    ],
)
def test_other_member_states_rules(country, minimum, inclusive, rates, tz):
    rules = ruleset_for(country)
    assert (rules.country, rules.min_total_cents, rules.min_total_inclusive) == (country, minimum, inclusive)
    assert rules.vat_rates_bp == frozenset(rates)
    assert rules.timezone == tz
    assert rules.export_months == 3


def test_france_excludes_tobacco_medicines_weapons_cultural_goods_and_vehicles():
    assert FR.excluded_categories == {
        "services", "tobacco", "medicines", "weapons", "cultural_goods", "vehicles"
    }


def test_every_excluded_category_is_a_known_category():
    for rules in RULESETS.values():
        assert rules.excluded_categories <= set(CATEGORIES)


def test_rulesets_cannot_be_changed_in_place():
    with pytest.raises(FrozenInstanceError):
        NL.min_total_cents = 0


def test_no_rules_for_a_country_that_is_not_configured():
    with pytest.raises(ValueError):
        ruleset_for("XX")


def test_a_national_minimum_above_the_eu_ceiling_of_175_is_refused():
    assert replace(NL, min_total_cents=17_500).min_total_cents == 17_500
    with pytest.raises(ValueError):
        replace(NL, min_total_cents=17_501)


def test_rules_are_only_for_eu_member_states():
    with pytest.raises(ValueError):
        replace(NL, country="CH")


# --- export deadline -------------------------------------------------------

@pytest.mark.parametrize(
    ("bought", "leave_by"),
    [
        (date(2026, 5, 26), date(2026, 8, 31)),
        (date(2026, 1, 31), date(2026, 4, 30)),
        (date(2026, 12, 31), date(2027, 3, 31)),
        (date(2027, 11, 1), date(2028, 2, 29)),
        (date(2026, 10, 1), date(2027, 1, 31)),
    ],
)
def test_goods_leave_by_the_end_of_the_third_month_after_purchase(bought, leave_by):
    assert export_deadline(bought) == leave_by


def test_form_bought_30_november_2027_must_leave_by_29_february_2028():
    assert export_deadline(date(2027, 11, 30)) == date(2028, 2, 29)


def test_form_bought_30_november_2026_must_leave_by_28_february_2027():
    assert export_deadline(date(2026, 11, 30)) == date(2027, 2, 28)


def test_form_bought_31_january_must_leave_by_30_april():
    assert export_deadline(date(2027, 1, 31)) == date(2027, 4, 30)


def test_form_bought_31_december_2026_must_leave_by_31_march_2027():
    assert export_deadline(date(2026, 12, 31)) == date(2027, 3, 31)


def test_export_period_is_configurable_in_months():
    assert export_deadline(date(2026, 1, 31), months=1) == date(2026, 2, 28)
    assert export_deadline(date(2026, 1, 31), months=0) == date(2026, 1, 31)
    with pytest.raises(ValueError):
        export_deadline(date(2026, 1, 31), months=-1)


def test_deadline_in_summer_time_ends_at_22_00_utc():
    # 1 April is summer time (UTC+2) in Amsterdam.
    end = deadline_end_utc(date(2027, 3, 31), AMSTERDAM)
    assert end == utc(2027, 3, 31, 22, 0)
    assert end.utcoffset() == timedelta(0)


def test_deadline_in_winter_time_ends_at_23_00_utc():
    # 1 November is winter time (UTC+1) in Amsterdam.
    assert deadline_end_utc(date(2026, 10, 31), AMSTERDAM) == utc(2026, 10, 31, 23, 0)


def test_deadline_on_the_days_the_clocks_change():
    # Clocks go forward on 28 March 2027 and back on 25 October 2026.
    assert deadline_end_utc(date(2027, 3, 27), AMSTERDAM) == utc(2027, 3, 27, 23, 0)
    assert deadline_end_utc(date(2027, 3, 28), AMSTERDAM) == utc(2027, 3, 28, 22, 0)
    assert deadline_end_utc(date(2026, 10, 24), AMSTERDAM) == utc(2026, 10, 24, 22, 0)
    assert deadline_end_utc(date(2026, 10, 25), AMSTERDAM) == utc(2026, 10, 25, 23, 0)


def test_deadline_in_lisbon_ends_an_hour_later_than_in_amsterdam():
    assert deadline_end_utc(date(2026, 8, 31), "Europe/Lisbon") == utc(2026, 8, 31, 23, 0)


def test_form_is_not_expired_at_23_30_amsterdam_time_on_the_deadline_day():
    assert not is_expired(date(2026, 8, 31), utc(2026, 8, 31, 21, 30), AMSTERDAM)
    assert not is_expired(date(2026, 8, 31), utc(2026, 8, 31, 21, 59, 59), AMSTERDAM)


def test_form_is_expired_from_midnight_amsterdam_time_after_the_deadline_day():
    assert is_expired(date(2026, 8, 31), utc(2026, 8, 31, 22, 0), AMSTERDAM)
    assert is_expired(date(2026, 8, 31), utc(2026, 9, 1, 12, 0), AMSTERDAM)


def test_local_today_is_the_amsterdam_date_not_the_utc_date():
    assert local_today(utc(2026, 6, 1, 21, 59), AMSTERDAM) == date(2026, 6, 1)
    assert local_today(utc(2026, 6, 1, 22, 0), AMSTERDAM) == date(2026, 6, 2)
    assert local_today(utc(2026, 12, 1, 22, 59), AMSTERDAM) == date(2026, 12, 1)
    assert local_today(utc(2026, 12, 1, 23, 0), AMSTERDAM) == date(2026, 12, 2)


def test_a_time_without_time_zone_is_refused():
    with pytest.raises(ValueError):
        local_today(datetime(2026, 6, 1, 12, 0), AMSTERDAM)


# --- eligibility: dates ----------------------------------------------------

def test_a_plain_form_is_eligible():
    assert check_eligibility(draft(), NL, NOON_1_JUNE_2026) == []


def test_purchase_today_in_amsterdam_is_accepted_while_it_is_still_yesterday_in_utc():
    # 22:30 UTC on 1 June is 00:30 on 2 June in Amsterdam.
    now = utc(2026, 6, 1, 22, 30)
    assert check_eligibility(draft(bought=date(2026, 6, 2)), NL, now) == []


def test_purchase_tomorrow_in_amsterdam_is_refused():
    now = utc(2026, 6, 1, 21, 30)  # 23:30 on 1 June in Amsterdam
    assert check_eligibility(draft(bought=date(2026, 6, 2)), NL, now) == [
        Violation(
            "purchase_date",
            "purchase_in_future",
            "The purchase date 2026-06-02 is after today (2026-06-01 in Europe/Amsterdam).",
        )
    ]


def test_purchase_is_accepted_until_the_end_of_the_deadline_day():
    bought = date(2026, 5, 26)
    assert check_eligibility(draft(bought=bought), NL, utc(2026, 8, 31, 21, 30)) == []


def test_purchase_whose_deadline_has_passed_is_refused():
    bought = date(2026, 5, 26)
    assert check_eligibility(draft(bought=bought), NL, utc(2026, 8, 31, 22, 0)) == [
        Violation(
            "purchase_date",
            "deadline_passed",
            "Goods bought on 2026-05-26 had to leave the EU by 2026-08-31; "
            "that deadline has passed.",
        )
    ]


# --- eligibility: traveller ------------------------------------------------

@pytest.mark.parametrize("country", ["NL", "DE", "GR", "IE"])
def test_traveller_living_in_the_eu_is_refused(country):
    assert codes(check_eligibility(draft(residence=country), NL, NOON_1_JUNE_2026)) == [
        ("traveller.residence_country", "eu_residence")
    ]


def test_eu_residence_message_names_the_country():
    [violation] = check_eligibility(draft(residence="BE"), NL, NOON_1_JUNE_2026)
    assert violation.message == (
        "The traveller lives in BE, inside the EU; "
        "only travellers living outside the EU get a VAT refund."
    )


@pytest.mark.parametrize("country", ["CH", "NO", "GB"])
def test_traveller_living_in_switzerland_norway_or_the_uk_is_eligible(country):
    assert check_eligibility(draft(residence=country), NL, NOON_1_JUNE_2026) == []


@pytest.mark.parametrize("country", ["XX", "gb", "", "GBR"])
def test_residence_that_is_not_a_country_code_is_refused(country):
    assert codes(check_eligibility(draft(residence=country), NL, NOON_1_JUNE_2026)) == [
        ("traveller.residence_country", "unknown_country")
    ]


# --- eligibility: minimum amount -------------------------------------------

def test_nl_form_of_eur_49_99_is_under_the_minimum():
    assert check_eligibility(draft(shirt(4_999)), NL, NOON_1_JUNE_2026) == [
        Violation("items", "below_minimum",
                  "The total EUR 49.99 is under the minimum of EUR 50.00 for NL.")
    ]


def test_nl_form_of_exactly_eur_50_00_is_eligible():
    assert check_eligibility(draft(shirt(5_000)), NL, NOON_1_JUNE_2026) == []


def test_nl_minimum_counts_the_whole_form_not_one_line():
    lines = (shirt(2_500), shirt(1_250, quantity=2))
    assert check_eligibility(draft(*lines), NL, NOON_1_JUNE_2026) == []


def test_fr_form_of_exactly_eur_100_00_is_refused():
    assert check_eligibility(draft(shirt(10_000, rate_bp=2000)), FR, NOON_1_JUNE_2026) == [
        Violation("items", "below_minimum",
                  "The total EUR 100.00 must be more than EUR 100.00 for FR.")
    ]


def test_fr_form_of_eur_100_01_is_eligible():
    assert check_eligibility(draft(shirt(10_001, rate_bp=2000)), FR, NOON_1_JUNE_2026) == []


@pytest.mark.parametrize(
    ("country", "rate_bp", "refused_at", "accepted_at"),
    [("IT", 2200, 7_000, 7_001), ("DE", 1900, 5_000, 5_001)],
)
def test_strict_minimums_of_italy_and_germany(country, rate_bp, refused_at, accepted_at):
    rules = ruleset_for(country)
    refused = check_eligibility(draft(shirt(refused_at, rate_bp=rate_bp)), rules, NOON_1_JUNE_2026)
    assert codes(refused) == [("items", "below_minimum")]
    assert check_eligibility(draft(shirt(accepted_at, rate_bp=rate_bp)), rules, NOON_1_JUNE_2026) == []


def test_spain_has_no_minimum():
    assert check_eligibility(draft(shirt(1)), ruleset_for("ES"), NOON_1_JUNE_2026) == []


def test_a_form_without_items_is_refused_even_without_a_minimum():
    empty = Draft(date(2026, 6, 1), "US", [])
    assert codes(check_eligibility(empty, ruleset_for("ES"), NOON_1_JUNE_2026)) == [
        ("items", "no_items")
    ]


# --- eligibility: lines ----------------------------------------------------

def test_services_cannot_be_refunded():
    lines = (shirt(), shirt(category="services"))
    assert check_eligibility(draft(*lines), NL, NOON_1_JUNE_2026) == [
        Violation("items.1.category", "excluded_category", "services cannot be refunded in NL.")
    ]


def test_tobacco_is_refused_in_france_but_not_in_the_netherlands():
    fr_line = shirt(20_000, rate_bp=2000, category="tobacco")
    assert codes(check_eligibility(draft(fr_line), FR, NOON_1_JUNE_2026)) == [
        ("items.0.category", "excluded_category")
    ]
    assert check_eligibility(draft(shirt(category="tobacco")), NL, NOON_1_JUNE_2026) == []


def test_a_misspelt_category_is_refused_rather_than_refunded():
    assert codes(check_eligibility(draft(shirt(category="service")), NL, NOON_1_JUNE_2026)) == [
        ("items.0.category", "unknown_category")
    ]


def test_unknown_vat_rate_is_refused_with_the_line_index_in_the_field():
    lines = (shirt(), shirt(rate_bp=900), shirt(rate_bp=1900))
    assert check_eligibility(draft(*lines), NL, NOON_1_JUNE_2026) == [
        Violation("items.2.vat_rate", "unknown_vat_rate",
                  "VAT rate 19 % is not a rate in NL (21 %, 9 %).")
    ]


def test_french_reduced_rate_of_5_5_percent_is_named_with_its_decimal():
    [violation] = check_eligibility(draft(shirt(20_000, rate_bp=2100)), FR, NOON_1_JUNE_2026)
    assert violation.message == "VAT rate 21 % is not a rate in FR (20 %, 10 %, 5.5 %, 2.1 %)."


def test_zero_quantity_and_zero_price_are_refused_per_line():
    lines = (shirt(quantity=0), shirt(price_cents=0), shirt())
    assert check_eligibility(draft(*lines), NL, NOON_1_JUNE_2026) == [
        Violation("items.0.quantity", "invalid_quantity", "Quantity 0 is not a positive whole number."),
        Violation("items.1.unit_price_cents", "invalid_price", "Unit price EUR 0.00 is not at least EUR 0.01."),
    ]


def test_invalid_lines_do_not_count_towards_the_minimum():
    lines = (shirt(-10_000), shirt(5_000))
    assert codes(check_eligibility(draft(*lines), NL, NOON_1_JUNE_2026)) == [
        ("items.0.unit_price_cents", "invalid_price")
    ]


def test_every_violation_is_reported_at_once_in_body_order():
    lines = (shirt(1_000, category="services"), shirt(1_000, rate_bp=600))
    bad = draft(*lines, bought=date(2026, 6, 2), residence="FR")
    assert codes(check_eligibility(bad, NL, NOON_1_JUNE_2026)) == [
        ("traveller.residence_country", "eu_residence"),
        ("purchase_date", "purchase_in_future"),
        ("items.0.category", "excluded_category"),
        ("items.1.vat_rate", "unknown_vat_rate"),
        ("items", "below_minimum"),
    ]


def test_eligibility_needs_a_time_zone_aware_now():
    with pytest.raises(ValueError):
        check_eligibility(draft(), NL, datetime(2026, 6, 1, 12, 0))


# --- totals ----------------------------------------------------------------

def test_totals_of_a_form_with_two_rates_and_an_intermediary_fee():
    lines = [Line(2, 6_050, 2100, "clothing"), Line(1, 1_090, 900, "food")]
    # VAT 21.00 + 0.90 = 21.90; a 25 % fee is 5.475 -> 5.48, half up.
    assert compute_totals(lines, fee_bp=2500) == Totals(
        total_cents=13_190,
        vat_cents=2_190,
        fee_cents=548,
        refund_cents=1_642,
        line_vat_cents=[2_100, 90],
        line_total_cents=[12_100, 1_090],
    )


def test_without_a_fee_the_traveller_gets_all_the_vat():
    totals = compute_totals([Line(1, 12_100, 2100, "watches")])
    assert (totals.vat_cents, totals.fee_cents, totals.refund_cents) == (2_100, 0, 2_100)


def test_form_vat_is_the_sum_of_the_rounded_line_vat():
    # Each EUR 1.00 line holds 17.355 cents -> 17; VAT on EUR 2.00 would be 35.
    totals = compute_totals([Line(1, 100, 2100, "food"), Line(1, 100, 2100, "food")])
    assert totals.line_vat_cents == [17, 17]
    assert totals.vat_cents == 34


def test_line_vat_is_computed_on_the_line_total_not_per_unit():
    # 3 x EUR 1.00: VAT of 3.00 is 52.07 -> 52 cents, not 3 x 17 = 51.
    assert compute_totals([Line(3, 100, 2100, "food")]).line_vat_cents == [52]


def test_fee_outside_0_to_100_percent_is_refused():
    with pytest.raises(ValueError):
        compute_totals([shirt()], fee_bp=10_001)
    with pytest.raises(ValueError):
        compute_totals([shirt()], fee_bp=-1)


# A validation at the desk computes the refund of the goods shown with the
# fee of the form: whatever part of the goods, it is never more than the
# refund due on the whole form, and never more than the VAT of that part.
from hypothesis import given, settings, strategies as st  # noqa: E402

_LINES = st.lists(st.tuples(st.integers(1, 20), st.integers(1, 500_000), st.sampled_from([2100, 900])),
                  min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(_LINES, st.integers(0, 10_000), st.data())
def test_the_refund_of_any_part_of_the_goods_never_exceeds_the_refund_due_on_the_form(lines, fee_bp, data):
    goods = [Line(q, price, rate, "other") for q, price, rate in lines]
    kept = [line for line in goods if data.draw(st.booleans())]
    whole, part = compute_totals(goods, fee_bp), compute_totals(kept, fee_bp)
    assert 0 <= part.refund_cents <= whole.refund_cents
    assert part.refund_cents <= part.vat_cents
