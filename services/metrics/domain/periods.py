"""Tenant-local calendar periods: day, ISO week, month and fiscal quarter.

An activity belongs to the local day on which it happened in the tenant's IANA time zone;
every longer period is a run of whole local days, so day rollups add up to any period
without re-reading activities. Daylight-saving changes only change how long a day is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo


class Grain(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """Local days ``start`` (inclusive) to ``end`` (exclusive) of one grain."""

    grain: Grain
    start: date
    end: date
    label: str

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class FiscalCalendar:
    """Buckets instants into a tenant's local periods; quarters follow its fiscal year."""

    zone: ZoneInfo
    fiscal_year_start_month: int = 1
    #: "end" names a fiscal year by the calendar year it ends in (Feb 2026-Jan 2027 is FY2027).
    fiscal_year_named_by: Literal["end", "start"] = "end"

    def __post_init__(self) -> None:
        if not 1 <= self.fiscal_year_start_month <= 12:
            raise ValueError("fiscal_year_start_month must be between 1 and 12")

    def local_day(self, at: datetime) -> date:
        # An instant in ``UTC`` (what the decoders give) needs no ``utcoffset`` call to be aware.
        tz = at.tzinfo
        if tz is not UTC and (tz is None or at.utcoffset() is None):
            raise ValueError("an instant needs a timezone offset to be bucketed")
        return at.astimezone(self.zone).date()

    def period_at(self, at: datetime, grain: Grain) -> Period:
        return self.period_of(self.local_day(at), grain)

    def period_of(self, day: date, grain: Grain) -> Period:
        if grain is Grain.DAY:
            return Period(grain, day, day + timedelta(days=1), day.isoformat())
        if grain is Grain.WEEK:
            iso = day.isocalendar()
            monday = day - timedelta(days=iso.weekday - 1)
            return Period(grain, monday, monday + timedelta(days=7), f"{iso.year}-W{iso.week:02d}")
        if grain is Grain.MONTH:
            first = day.replace(day=1)
            return Period(grain, first, _add_months(first, 1), f"{day.year}-{day.month:02d}")
        return self._quarter_of(day)

    def fiscal_year_start(self, day: date) -> date:
        year = day.year if day.month >= self.fiscal_year_start_month else day.year - 1
        return date(year, self.fiscal_year_start_month, 1)

    def fiscal_year_of(self, day: date) -> int:
        start = self.fiscal_year_start(day)
        # A fiscal year starting in January both starts and ends in the same calendar year.
        if self.fiscal_year_named_by == "end" and self.fiscal_year_start_month != 1:
            return start.year + 1
        return start.year

    def _quarter_of(self, day: date) -> Period:
        year_start = self.fiscal_year_start(day)
        months_in = (day.year - year_start.year) * 12 + day.month - year_start.month
        quarter = months_in // 3 + 1
        start = _add_months(year_start, 3 * (quarter - 1))
        label = f"FY{self.fiscal_year_of(day)}-Q{quarter}"
        return Period(Grain.QUARTER, start, _add_months(start, 3), label)

    def next(self, period: Period) -> Period:
        return self.period_of(period.end, period.grain)

    def previous(self, period: Period) -> Period:
        return self.period_of(period.start - timedelta(days=1), period.grain)

    def periods_between(self, first_day: date, last_day: date, grain: Grain) -> list[Period]:
        """Every period of ``grain`` that overlaps the local days ``first_day``..``last_day`` inclusive."""
        if last_day < first_day:
            return []
        periods = [self.period_of(first_day, grain)]
        while periods[-1].end <= last_day:
            periods.append(self.next(periods[-1]))
        return periods

    def trailing(self, period: Period, count: int) -> list[Period]:
        """The ``count`` periods immediately before ``period``, oldest first."""
        if count < 0:
            raise ValueError("count must not be negative")
        before: list[Period] = []
        current = period
        for _ in range(count):
            current = self.previous(current)
            before.append(current)
        return before[::-1]

    def start_instant(self, period: Period) -> datetime:
        """The first instant of the period (use ``[start_instant, end_instant)`` on timestamps).

        Local midnight with fold=0: when a DST gap swallows midnight this resolves to the
        transition itself, and when midnight repeats it is the first occurrence.
        """
        return datetime.combine(period.start, time(0), tzinfo=self.zone)

    def end_instant(self, period: Period) -> datetime:
        return datetime.combine(period.end, time(0), tzinfo=self.zone)
