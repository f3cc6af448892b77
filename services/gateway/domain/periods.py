"""The tenant's calendar as the dashboard navigates it: which period holds a day, the ones around it.

The same rules the metrics service buckets activities by (tenant-local days, ISO weeks starting
Monday, calendar months, fiscal quarters from the tenant's first fiscal month), so every period
start named here is a ``period_start`` of the rollups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from services.gateway.schemas import Granularity

#: The longest a period of each granularity can be, in days (for range bounds).
MAX_PERIOD_DAYS = {Granularity.DAY: 1, Granularity.WEEK: 7, Granularity.MONTH: 31, Granularity.QUARTER: 92}


@dataclass(frozen=True, slots=True)
class CalendarPeriod:
    """Local days ``start`` (inclusive) to ``end`` (exclusive)."""

    granularity: Granularity
    start: date
    end: date
    label: str


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(day: date, granularity: Granularity, fiscal_year_start_month: int = 1) -> CalendarPeriod:
    """The period of ``granularity`` that contains the local ``day``."""
    if granularity is Granularity.DAY:
        return CalendarPeriod(granularity, day, day + timedelta(days=1), day.isoformat())
    if granularity is Granularity.WEEK:
        iso = day.isocalendar()
        monday = day - timedelta(days=iso.weekday - 1)
        return CalendarPeriod(granularity, monday, monday + timedelta(days=7), f"{iso.year}-W{iso.week:02d}")
    if granularity is Granularity.MONTH:
        first = day.replace(day=1)
        return CalendarPeriod(granularity, first, _add_months(first, 1), f"{day.year}-{day.month:02d}")
    year = day.year if day.month >= fiscal_year_start_month else day.year - 1
    year_start = date(year, fiscal_year_start_month, 1)
    quarter = ((day.year - year_start.year) * 12 + day.month - year_start.month) // 3 + 1
    start = _add_months(year_start, 3 * (quarter - 1))
    # A fiscal year is named by the calendar year it ends in (the metrics service's default).
    fiscal_year = year if fiscal_year_start_month == 1 else year + 1
    return CalendarPeriod(granularity, start, _add_months(start, 3), f"FY{fiscal_year}-Q{quarter}")


def previous_period(period: CalendarPeriod, fiscal_year_start_month: int = 1) -> CalendarPeriod:
    return period_of(period.start - timedelta(days=1), period.granularity, fiscal_year_start_month)


def next_period(period: CalendarPeriod, fiscal_year_start_month: int = 1) -> CalendarPeriod:
    return period_of(period.end, period.granularity, fiscal_year_start_month)


def periods_spanned(
    first: date, last: date, granularity: Granularity, fiscal_year_start_month: int = 1
) -> int:
    """How many periods of ``granularity`` the days ``first``..``last`` touch (0 when reversed)."""
    if last < first:
        return 0
    if granularity is Granularity.DAY:
        return (last - first).days + 1
    if granularity is Granularity.WEEK:
        return (period_of(last, granularity).start - period_of(first, granularity).start).days // 7 + 1
    months = 1 if granularity is Granularity.MONTH else 3
    a = period_of(first, granularity, fiscal_year_start_month).start
    b = period_of(last, granularity, fiscal_year_start_month).start
    return ((b.year - a.year) * 12 + b.month - a.month) // months + 1
