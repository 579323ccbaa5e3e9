"""Money as integer cents and VAT rates as integer basis points.

Money is never a float: every amount is an ``int`` number of euro cents and
every rate an ``int`` number of basis points (21 % = 2100), so all arithmetic
is exact and rounding happens once, where the rules say, half up.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

BP_PER_WHOLE = 10_000  # 100 % in basis points


def _require_int(name: str, value: object) -> int:
    # bool is an int subclass; True cents is a bug, not an amount.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def div_round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest int, halves away from zero.

    For the non-negative amounts of this domain that is plain "half up".
    """
    _require_int("numerator", numerator)
    if _require_int("denominator", denominator) <= 0:
        raise ValueError("denominator must be positive")
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def vat_included_cents(gross_cents: int, rate_bp: int) -> int:
    """The VAT contained in a VAT-inclusive amount, rounded half up.

    ``gross * rate / (100 % + rate)``: EUR 121.00 at 21 % contains EUR 21.00.
    """
    _require_int("gross_cents", gross_cents)
    if _require_int("rate_bp", rate_bp) < 0:
        raise ValueError("a VAT rate cannot be negative")
    return div_round_half_up(gross_cents * rate_bp, BP_PER_WHOLE + rate_bp)


def percent_to_bp(value: int | str | Decimal | float) -> int:
    """A percentage such as ``21``, ``"5.5"`` or ``Decimal("9")`` in basis points.

    Raises ``ValueError`` for negatives, for more than two decimals and for
    text that is not a number. A float is read through its shortest repr
    (``5.5`` -> ``"5.5"``) so JSON numbers work without binary noise.
    """
    if isinstance(value, bool):
        raise TypeError("a percentage must be a number, not a bool")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a percentage: {value!r}") from None
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise TypeError(f"a percentage must be int, str or Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"not a percentage: {value}")
    if value < 0:
        raise ValueError(f"a percentage cannot be negative: {value}")
    bp = value * 100
    if bp != bp.to_integral_value():
        raise ValueError(f"a percentage has at most two decimals: {value}")
    return int(bp)


def format_eur(cents: int) -> str:
    """An amount as shown to people: ``123456`` -> ``"EUR 1,234.56"``."""
    _require_int("cents", cents)
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"EUR {sign}{euros:,}.{rest:02d}"
