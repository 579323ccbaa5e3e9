"""Money in integer cents: VAT contained in a price, rates, display."""
from decimal import Decimal

import pytest

from shared.money import div_round_half_up, format_eur, percent_to_bp, vat_included_cents


def test_vat_contained_in_eur_121_at_21_percent_is_eur_21():
    assert vat_included_cents(12_100, 2100) == 2_100


def test_vat_contained_in_eur_1_at_21_percent_rounds_down_to_17_cents():
    # 100 * 21 / 121 = 17.355...
    assert vat_included_cents(100, 2100) == 17


@pytest.mark.parametrize(
    ("gross_cents", "vat_cents"),
    [
        (3, 1),   # 0.5 cent rounds up
        (9, 2),   # 1.5 -> 2
        (15, 3),  # 2.5 -> 3: half up, not to even
        (14, 2),  # 2.33 -> 2
        (16, 3),  # 2.67 -> 3
    ],
)
def test_vat_at_20_percent_rounds_exact_halves_up(gross_cents, vat_cents):
    # At 20 % the VAT is exactly a sixth of the gross, so halves occur.
    assert vat_included_cents(gross_cents, 2000) == vat_cents


def test_vat_of_a_zero_rate_line_is_zero():
    assert vat_included_cents(12_345, 0) == 0


def test_vat_of_a_negative_amount_mirrors_the_positive_one():
    assert vat_included_cents(-15, 2000) == -3


def test_vat_refuses_a_negative_rate():
    with pytest.raises(ValueError):
        vat_included_cents(12_100, -2100)


@pytest.mark.parametrize("gross", [121.0, Decimal("121"), True])
def test_vat_refuses_amounts_that_are_not_integer_cents(gross):
    with pytest.raises(TypeError):
        vat_included_cents(gross, 2100)


def test_division_rounds_half_away_from_zero():
    assert div_round_half_up(5, 2) == 3
    assert div_round_half_up(-5, 2) == -3
    assert div_round_half_up(7, 4) == 2
    assert div_round_half_up(5, 4) == 1


@pytest.mark.parametrize(
    ("value", "bp"),
    [
        (21, 2100),
        ("5.5", 550),
        (Decimal("9"), 900),
        ("21.00", 2100),
        (" 2.1 ", 210),
        ("0", 0),
        (Decimal("5.50"), 550),
        (5.5, 550),
        (0.1, 10),
    ],
)
def test_percent_to_basis_points(value, bp):
    assert percent_to_bp(value) == bp


@pytest.mark.parametrize(
    "value", ["5.555", Decimal("0.001"), "-1", -21, Decimal("-0.01"), "abc", "21%", "", "NaN", "Infinity"]
)
def test_percent_with_more_than_two_decimals_negative_or_not_a_number_is_refused(value):
    with pytest.raises(ValueError):
        percent_to_bp(value)


@pytest.mark.parametrize("value", [True, None, [21]])
def test_percent_of_the_wrong_type_is_refused(value):
    with pytest.raises(TypeError):
        percent_to_bp(value)


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (123_456, "EUR 1,234.56"),
        (5, "EUR 0.05"),
        (0, "EUR 0.00"),
        (5_000, "EUR 50.00"),
        (100_000_000, "EUR 1,000,000.00"),
        (-150, "EUR -1.50"),
    ],
)
def test_amounts_are_shown_in_euros_with_thousands_separators(cents, text):
    assert format_eur(cents) == text


def test_amounts_that_are_floats_are_not_formatted():
    with pytest.raises(TypeError):
        format_eur(12.5)
