"""The customs desk after the export deadline (shared.rules.desk_may_validate):
a validation is accepted until the deadline day ends in Amsterdam; after
that only for a check opened before it ended, and only within the desk's
grace period, counted in real minutes (also across the clocks changing)."""
from datetime import date, datetime, timedelta, timezone

import pytest

from shared.rules import deadline_end_utc, desk_closes_at, desk_may_validate

AMSTERDAM = "Europe/Amsterdam"
GRACE = timedelta(minutes=120)
SECOND = timedelta(seconds=1)


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def may_validate(deadline, opened_at, decided_at, grace=GRACE):
    return desk_may_validate(deadline, opened_at, decided_at, AMSTERDAM, grace)


# 31 August 2026 ends at 22:00 UTC (midnight, summer time).
AUGUST = date(2026, 8, 31)
AUGUST_END = utc(2026, 8, 31, 22, 0)
OPENED_IN_TIME = utc(2026, 8, 31, 21, 30)  # 23:30 in Amsterdam


def test_the_last_minute_of_the_deadline_day_in_amsterdam_is_in_time():
    assert may_validate(AUGUST, OPENED_IN_TIME, utc(2026, 8, 31, 21, 59))
    assert may_validate(AUGUST, OPENED_IN_TIME, AUGUST_END - SECOND)


def test_the_first_minute_after_is_in_the_grace_period_of_a_check_opened_in_time():
    assert may_validate(AUGUST, OPENED_IN_TIME, AUGUST_END)
    assert may_validate(AUGUST, OPENED_IN_TIME, utc(2026, 8, 31, 22, 1))


def test_the_grace_period_ends_after_exactly_its_minutes():
    assert may_validate(AUGUST, OPENED_IN_TIME, AUGUST_END + GRACE - SECOND)
    assert not may_validate(AUGUST, OPENED_IN_TIME, AUGUST_END + GRACE)
    assert desk_closes_at(AUGUST, AMSTERDAM, GRACE) == AUGUST_END + GRACE


def test_a_check_opened_after_the_deadline_gets_no_grace():
    # Opened at midnight in Amsterdam, the first instant after the deadline day.
    assert not may_validate(AUGUST, AUGUST_END, AUGUST_END)
    assert not may_validate(AUGUST, AUGUST_END, AUGUST_END + timedelta(minutes=1))
    # One second earlier it was opened in time.
    assert may_validate(AUGUST, AUGUST_END - SECOND, AUGUST_END + timedelta(minutes=1))


def test_without_a_grace_period_the_deadline_is_the_deadline():
    assert may_validate(AUGUST, OPENED_IN_TIME, AUGUST_END - SECOND, grace=timedelta(0))
    assert not may_validate(AUGUST, OPENED_IN_TIME, AUGUST_END, grace=timedelta(0))


def test_utc_midnight_is_not_amsterdam_midnight():
    # 23:59 UTC on 31 August is already 1 September, 01:59, in Amsterdam.
    assert not may_validate(AUGUST, OPENED_IN_TIME, utc(2026, 8, 31, 23, 59), grace=timedelta(minutes=30))


@pytest.mark.parametrize("deadline, ends, hours_long", [
    # 31 March 2030: the clocks go forward at 02:00, a day of 23 hours that
    # ends at 22:00 UTC (midnight, summer time).
    (date(2030, 3, 31), utc(2030, 3, 31, 22, 0), 23),
    # 31 October 2027: the clocks go back at 03:00, a day of 25 hours that
    # ends at 23:00 UTC (midnight, winter time).
    (date(2027, 10, 31), utc(2027, 10, 31, 23, 0), 25),
])
def test_deadline_days_on_which_the_clocks_change(deadline, ends, hours_long):
    starts = deadline_end_utc(deadline - timedelta(days=1), AMSTERDAM)
    assert ends - starts == timedelta(hours=hours_long)
    assert deadline_end_utc(deadline, AMSTERDAM) == ends
    opened = ends - timedelta(minutes=30)
    assert may_validate(deadline, opened, ends - timedelta(minutes=1))
    assert may_validate(deadline, opened, ends + GRACE - SECOND)
    assert not may_validate(deadline, opened, ends + GRACE)
    assert not may_validate(deadline, ends, ends + timedelta(minutes=1))


def test_the_grace_period_counts_real_minutes_across_the_night_the_clocks_go_forward():
    # 27 March 2027 ends at 23:00 UTC (midnight, winter time); at 01:00 UTC
    # the clocks jump from 02:00 to 03:00. Two hours of grace end at 01:00
    # UTC, which Amsterdam's clocks show as 03:00.
    ends = utc(2027, 3, 27, 23, 0)
    assert deadline_end_utc(date(2027, 3, 27), AMSTERDAM) == ends
    assert may_validate(date(2027, 3, 27), ends - timedelta(minutes=5), utc(2027, 3, 28, 0, 59, 59))
    assert not may_validate(date(2027, 3, 27), ends - timedelta(minutes=5), utc(2027, 3, 28, 1, 0))


def test_times_without_a_time_zone_are_refused():
    with pytest.raises(ValueError):
        may_validate(AUGUST, datetime(2026, 8, 31, 21, 0), OPENED_IN_TIME)
    with pytest.raises(ValueError):
        may_validate(AUGUST, OPENED_IN_TIME, datetime(2026, 8, 31, 21, 0))
