"""``read_models.replace_rep_period_stats`` leaves a grain's rows exactly as given: a row gone is
deleted, a changed one updated, a new one inserted, and an unchanged one not written at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metrics.adapters import read_models
from services.metrics.domain.read_models import RepPeriodStat

TENANT = "acme"
W1, W2 = date(2026, 11, 2), date(2026, 11, 9)


def _stat(rep: str, period: date, score: float, **fields: Any) -> RepPeriodStat:
    values: dict[str, Any] = {
        "team_percentile": None,
        "baseline_score": None,
        "baseline_periods": 0,
        "change_vs_baseline": None,
        **fields,
    }
    return RepPeriodStat(rep, "team-a", period, score, **values)


async def _rows(engine: AsyncEngine, granularity: str) -> dict[tuple[date, str], tuple[Any, ...]]:
    """Each row's heap position (``ctid``, which any write changes), ``computed_at`` and values."""
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT period_start, rep_id, ctid::text, computed_at, team_id, score, team_percentile, baseline_score, "
                "baseline_periods, change_vs_baseline, activities, insufficient_data, recency_score "
                "FROM rep_period_stats WHERE tenant_id = :t AND granularity = :g"
            ),
            {"t": TENANT, "g": granularity},
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in result}


async def _replace(engine: AsyncEngine, granularity: str, stats: list[RepPeriodStat]) -> None:
    async with engine.begin() as conn:
        await read_models.replace_rep_period_stats(conn, TENANT, granularity, stats)


async def test_a_grain_is_replaced_writing_only_the_rows_that_changed(db_engine: AsyncEngine) -> None:
    kept = _stat("rep-1", W1, 1.5, activities=3)
    changed = _stat("rep-2", W1, 2.0, team_percentile=50.0, activities=2)
    gone = _stat("rep-3", W1, 0.5)
    nulls = _stat("rep-4", W1, 0.0, recency_score=None)
    await _replace(db_engine, "week", [kept, changed, gone, nulls])
    await _replace(db_engine, "month", [_stat("rep-1", W1, 9.0)])  # another grain: untouched
    before, month = await _rows(db_engine, "week"), await _rows(db_engine, "month")

    new = _stat("rep-1", W2, 0.25, insufficient_data=True, recency_score=0.2)
    moved = replace(changed, team_percentile=None, baseline_score=1.0, baseline_periods=4)
    await _replace(db_engine, "week", [kept, moved, replace(nulls), new])
    after = await _rows(db_engine, "week")

    assert sorted(after) == [(W1, "rep-1"), (W1, "rep-2"), (W1, "rep-4"), (W2, "rep-1")]
    assert after[(W1, "rep-1")] == before[(W1, "rep-1")]  # same values, same tuple: not written
    assert after[(W1, "rep-4")] == before[(W1, "rep-4")]  # NULLs equal NULLs
    assert after[(W1, "rep-2")][2:] == ("team-a", 2.0, None, 1.0, 4, None, 2, False, None)
    assert after[(W1, "rep-2")][0] != before[(W1, "rep-2")][0]
    assert after[(W1, "rep-2")][1] > before[(W1, "rep-2")][1]  # when its figures last changed
    assert after[(W2, "rep-1")][2:] == ("team-a", 0.25, None, None, 0, None, 0, True, 0.2)
    assert await _rows(db_engine, "month") == month

    await _replace(db_engine, "week", [])
    assert await _rows(db_engine, "week") == {}
    assert await _rows(db_engine, "month") == month
