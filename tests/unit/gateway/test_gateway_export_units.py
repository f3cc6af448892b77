"""CSV negotiation and cells, and the dashboard's calendar arithmetic."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from services.gateway.domain.periods import next_period, period_of, periods_spanned, previous_period
from services.gateway.export import cell, export_for, preference, table, to_csv
from services.gateway.schemas import Granularity

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        (None, "json"),
        ("text/csv", "csv"),
        ("text/csv, application/json", "csv"),
        ("application/json, text/csv;q=0.9", "json"),
        ("text/csv;q=0.5, */*;q=0.8", "json"),
        ("text/csv, */*;q=0.8", "csv"),
        ("text/csv;q=0", "json"),
        ("text/event-stream", "json"),
        ("*/*", "json"),
    ],
)
def test_csv_is_chosen_only_when_preferred(accept: str | None, wanted: str) -> None:
    assert preference(accept) == wanted


def test_exportable_routes() -> None:
    assert export_for("/v1/leaderboard") is not None
    assert export_for("/v1/reps/rep-1/scores") is not None
    assert export_for("/v1/insights/bright-spots") is not None
    assert export_for("/v1/deals/d-1/activities") is not None
    assert export_for("/v1/reps/rep-1") is None
    assert export_for("/v1/activities/0b7c") is None


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+33 1 23", "'+33 1 23"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Ana", "Ana"),
        (-0.25, "-0.25"),
        (3, "3"),
        (None, ""),
        (True, "true"),
        ("2026-11-02", "2026-11-02"),
    ],
)
def test_cells_neutralise_formulas_but_not_numbers(value: object, written: str) -> None:
    assert cell(value, UTC) == written


def test_timestamps_move_to_the_tenant_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert cell("2026-07-01T10:00:00Z", paris) == "2026-07-01T12:00:00+02:00"
    assert cell("2026-12-01T10:00:00.5+00:00", paris) == "2026-12-01T11:00:00.500000+01:00"


def test_tables_flatten_nested_values_and_repeat_the_context() -> None:
    columns, rows = table(
        {
            "rep_id": "r",
            "periods": [
                {"period_start": "2026-11-02", "counts": {"dials": 2}, "tags": ["a", "b"]},
                {"period_start": "2026-11-09", "counts": {"dials": 0, "connects": 1}, "extra": [{"x": 1}]},
            ],
        },
        "periods",
    )
    assert columns == ["rep_id", "period_start", "counts.dials", "tags", "counts.connects", "extra"]
    assert rows[1] == {
        "rep_id": "r",
        "period_start": "2026-11-09",
        "counts.dials": 0,
        "counts.connects": 1,
        "extra": '[{"x":1}]',
    }
    assert to_csv(columns, rows, UTC) == (
        b"rep_id,period_start,counts.dials,tags,counts.connects,extra\r\n"
        b"r,2026-11-02,2,a; b,,\r\n"
        b'r,2026-11-09,0,,1,"[{""x"":1}]"\r\n'
    )


@pytest.mark.parametrize(
    ("day", "granularity", "fiscal", "start", "end", "label"),
    [
        (date(2026, 12, 2), Granularity.WEEK, 1, date(2026, 11, 30), date(2026, 12, 7), "2026-W49"),
        (date(2027, 1, 1), Granularity.WEEK, 1, date(2026, 12, 28), date(2027, 1, 4), "2026-W53"),
        (date(2026, 2, 28), Granularity.MONTH, 1, date(2026, 2, 1), date(2026, 3, 1), "2026-02"),
        (date(2026, 12, 2), Granularity.QUARTER, 1, date(2026, 10, 1), date(2027, 1, 1), "FY2026-Q4"),
        (date(2026, 12, 2), Granularity.QUARTER, 2, date(2026, 11, 1), date(2027, 2, 1), "FY2027-Q4"),
        (date(2026, 1, 31), Granularity.QUARTER, 2, date(2025, 11, 1), date(2026, 2, 1), "FY2026-Q4"),
        (date(2026, 2, 1), Granularity.QUARTER, 2, date(2026, 2, 1), date(2026, 5, 1), "FY2027-Q1"),
    ],
)
def test_period_of_a_day(
    day: date, granularity: Granularity, fiscal: int, start: date, end: date, label: str
) -> None:
    period = period_of(day, granularity, fiscal)
    assert (period.start, period.end, period.label) == (start, end, label)
    assert previous_period(period, fiscal).end == period.start
    assert next_period(period, fiscal).start == period.end


def test_periods_spanned_counts_touched_periods() -> None:
    assert periods_spanned(date(2025, 1, 1), date(2026, 12, 31), Granularity.QUARTER) == 8
    assert periods_spanned(date(2026, 11, 29), date(2026, 11, 30), Granularity.WEEK) == 2
    assert periods_spanned(date(2026, 1, 31), date(2026, 3, 1), Granularity.MONTH) == 3
    assert periods_spanned(date(2026, 1, 1), date(2026, 1, 10), Granularity.DAY) == 10
    assert periods_spanned(date(2026, 2, 1), date(2026, 1, 1), Granularity.MONTH) == 0
