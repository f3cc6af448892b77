from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.metrics.domain.periods import FiscalCalendar, Grain, Period

UTC_CALENDAR = FiscalCalendar(ZoneInfo("UTC"))
FEBRUARY_FY = FiscalCalendar(ZoneInfo("UTC"), fiscal_year_start_month=2)
FEBRUARY_FY_BY_START = FiscalCalendar(
    ZoneInfo("UTC"), fiscal_year_start_month=2, fiscal_year_named_by="start"
)


@pytest.mark.parametrize(
    ("calendar", "day", "grain", "label", "start", "end"),
    [
        (UTC_CALENDAR, date(2026, 11, 24), Grain.DAY, "2026-11-24", date(2026, 11, 24), date(2026, 11, 25)),
        (UTC_CALENDAR, date(2026, 11, 24), Grain.WEEK, "2026-W48", date(2026, 11, 23), date(2026, 11, 30)),
        # 2026 starts on a Thursday, so it has an ISO week 53 reaching into 2027.
        (UTC_CALENDAR, date(2026, 12, 31), Grain.WEEK, "2026-W53", date(2026, 12, 28), date(2027, 1, 4)),
        (UTC_CALENDAR, date(2027, 1, 3), Grain.WEEK, "2026-W53", date(2026, 12, 28), date(2027, 1, 4)),
        (UTC_CALENDAR, date(2027, 1, 4), Grain.WEEK, "2027-W01", date(2027, 1, 4), date(2027, 1, 11)),
        # ...and its week 1 starts in 2025.
        (UTC_CALENDAR, date(2025, 12, 29), Grain.WEEK, "2026-W01", date(2025, 12, 29), date(2026, 1, 5)),
        (UTC_CALENDAR, date(2026, 2, 15), Grain.MONTH, "2026-02", date(2026, 2, 1), date(2026, 3, 1)),
        (UTC_CALENDAR, date(2026, 12, 31), Grain.MONTH, "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        (UTC_CALENDAR, date(2026, 11, 24), Grain.QUARTER, "FY2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
        (UTC_CALENDAR, date(2027, 1, 1), Grain.QUARTER, "FY2027-Q1", date(2027, 1, 1), date(2027, 4, 1)),
        (FEBRUARY_FY, date(2026, 1, 31), Grain.QUARTER, "FY2026-Q4", date(2025, 11, 1), date(2026, 2, 1)),
        (FEBRUARY_FY, date(2026, 2, 1), Grain.QUARTER, "FY2027-Q1", date(2026, 2, 1), date(2026, 5, 1)),
        (FEBRUARY_FY, date(2026, 8, 31), Grain.QUARTER, "FY2027-Q3", date(2026, 8, 1), date(2026, 11, 1)),
        (FEBRUARY_FY, date(2026, 12, 15), Grain.QUARTER, "FY2027-Q4", date(2026, 11, 1), date(2027, 2, 1)),
        (FEBRUARY_FY, date(2027, 1, 31), Grain.QUARTER, "FY2027-Q4", date(2026, 11, 1), date(2027, 2, 1)),
        (
            FEBRUARY_FY_BY_START,
            date(2026, 2, 1),
            Grain.QUARTER,
            "FY2026-Q1",
            date(2026, 2, 1),
            date(2026, 5, 1),
        ),
        # Months stay calendar months whatever the fiscal year.
        (FEBRUARY_FY, date(2026, 1, 31), Grain.MONTH, "2026-01", date(2026, 1, 1), date(2026, 2, 1)),
    ],
)
def test_period_of(
    calendar: FiscalCalendar, day: date, grain: Grain, label: str, start: date, end: date
) -> None:
    assert calendar.period_of(day, grain) == Period(grain, start, end, label)


BERLIN = FiscalCalendar(ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    ("instant", "local_day"),
    [
        # Spring forward on 2026-03-29 at 01:00 UTC: 23:00 UTC the evening before is local midnight.
        (datetime(2026, 3, 28, 22, 59, tzinfo=UTC), date(2026, 3, 28)),
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), date(2026, 3, 30)),
        # Fall back on 2026-10-25: the local midnight after it is 23:00 UTC again.
        (datetime(2026, 10, 24, 21, 59, tzinfo=UTC), date(2026, 10, 24)),
        (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 22, 59, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), date(2026, 10, 26)),
        # An offset other than UTC is honoured, not ignored.
        (datetime(2026, 7, 1, 23, 30, tzinfo=ZoneInfo("America/New_York")), date(2026, 7, 2)),
    ],
)
def test_local_day_across_dst(instant: datetime, local_day: date) -> None:
    assert BERLIN.local_day(instant) == local_day


@pytest.mark.parametrize(
    ("calendar", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),
        (BERLIN, date(2026, 10, 25), 25),
        (BERLIN, date(2026, 11, 24), 24),
        # Cuba springs forward at midnight: the day starts at the transition, 01:00 local.
        (FiscalCalendar(ZoneInfo("America/Havana")), date(2026, 3, 8), 23),
        (FiscalCalendar(ZoneInfo("America/Havana")), date(2026, 11, 1), 25),
    ],
)
def test_day_instants_span_the_real_length_of_the_day(
    calendar: FiscalCalendar, day: date, hours: int
) -> None:
    period = calendar.period_of(day, Grain.DAY)

    start, end = calendar.start_instant(period), calendar.end_instant(period)

    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=hours)
    assert calendar.local_day(start) == day
    assert calendar.local_day(end - timedelta(microseconds=1)) == day


def test_havana_spring_forward_day_starts_at_the_transition() -> None:
    havana = FiscalCalendar(ZoneInfo("America/Havana"))

    start = havana.start_instant(havana.period_of(date(2026, 3, 8), Grain.DAY))

    assert start.astimezone(UTC) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)


def test_new_year_in_new_york_is_bucketed_by_local_time() -> None:
    new_york = FiscalCalendar(ZoneInfo("America/New_York"))
    last_minute = datetime(2027, 1, 1, 4, 59, tzinfo=UTC)

    assert new_york.period_at(last_minute, Grain.WEEK).label == "2026-W53"
    assert new_york.period_at(last_minute, Grain.QUARTER).label == "FY2026-Q4"
    assert new_york.period_at(last_minute + timedelta(minutes=1), Grain.QUARTER).label == "FY2027-Q1"


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone offset"):
        BERLIN.local_day(datetime(2026, 11, 24, 12, 0))


def test_fiscal_start_month_is_validated() -> None:
    with pytest.raises(ValueError, match="between 1 and 12"):
        FiscalCalendar(ZoneInfo("UTC"), fiscal_year_start_month=13)


def test_periods_between_covers_the_range_including_partial_periods() -> None:
    weeks = UTC_CALENDAR.periods_between(date(2026, 12, 20), date(2027, 1, 10), Grain.WEEK)

    assert [week.label for week in weeks] == ["2026-W51", "2026-W52", "2026-W53", "2027-W01"]
    assert UTC_CALENDAR.periods_between(date(2026, 2, 1), date(2026, 1, 1), Grain.DAY) == []


def test_periods_between_fiscal_quarters() -> None:
    quarters = FEBRUARY_FY.periods_between(date(2026, 1, 15), date(2026, 5, 1), Grain.QUARTER)

    assert [quarter.label for quarter in quarters] == ["FY2026-Q4", "FY2027-Q1", "FY2027-Q2"]


@pytest.mark.parametrize(
    ("calendar", "day", "grain", "count", "labels"),
    [
        (FEBRUARY_FY, date(2026, 3, 1), Grain.QUARTER, 3, ["FY2026-Q2", "FY2026-Q3", "FY2026-Q4"]),
        (UTC_CALENDAR, date(2026, 1, 15), Grain.MONTH, 2, ["2025-11", "2025-12"]),
        (UTC_CALENDAR, date(2027, 1, 4), Grain.WEEK, 2, ["2026-W52", "2026-W53"]),
        (UTC_CALENDAR, date(2026, 3, 1), Grain.DAY, 2, ["2026-02-27", "2026-02-28"]),
        (UTC_CALENDAR, date(2026, 3, 1), Grain.DAY, 0, []),
    ],
)
def test_trailing_periods_are_the_ones_just_before_oldest_first(
    calendar: FiscalCalendar, day: date, grain: Grain, count: int, labels: list[str]
) -> None:
    trailing = calendar.trailing(calendar.period_of(day, grain), count)

    assert [period.label for period in trailing] == labels


def test_trailing_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="negative"):
        UTC_CALENDAR.trailing(UTC_CALENDAR.period_of(date(2026, 3, 1), Grain.DAY), -1)


@given(
    day=st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)),
    grain=st.sampled_from(Grain),
    start_month=st.integers(min_value=1, max_value=12),
    named_by=st.sampled_from(["end", "start"]),
)
def test_periods_tile_the_calendar(
    day: date, grain: Grain, start_month: int, named_by: Literal["end", "start"]
) -> None:
    calendar = FiscalCalendar(ZoneInfo("UTC"), start_month, named_by)

    period = calendar.period_of(day, grain)

    assert period.contains(day)
    assert calendar.next(calendar.previous(period)) == period
    assert calendar.previous(period).end == period.start
    assert all(
        calendar.period_of(period.start + timedelta(days=n), grain) == period for n in (0, period.days - 1)
    )
