"""Migration 0012b_metrics_writes: account and deal rollups go (nothing reads them) and come back on a downgrade."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.metrics.metrics_support import apply, attributed, create_tenant, rollup_rows


def _downgrade(url: str) -> None:
    command.downgrade(alembic_config(url), "0012_rep_roles")


async def _indexes(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'metric_contributions'")
        )
        return {row.indexname for row in rows}


async def test_account_and_deal_rollups_are_dropped_and_a_downgrade_rolls_them_up_again(
    database_url: str, db_engine: AsyncEngine
) -> None:
    # A February fiscal year: 1 April is in the quarter starting 1 February.
    await create_tenant(db_engine, fiscal_year_start_month=2)
    at = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)
    await apply(
        db_engine,
        [
            attributed(activity=1, occurred_at=at, duration_seconds=90),
            attributed(activity=2, occurred_at=at, deal_id=None),
            attributed(activity=3, occurred_at=at, rep_id="rep-2", account_id="acc-2", deal_id="deal-2"),
        ],
    )
    stored = await rollup_rows(db_engine)
    assert {cell[0] for cell in stored} == {"rep", "team", "team_rep"}
    assert "metric_contributions_deal" not in await _indexes(db_engine)

    await asyncio.to_thread(_downgrade, database_url)

    restored = await rollup_rows(db_engine)
    assert "metric_contributions_deal" in await _indexes(db_engine)
    call = {"activities": 1, "dials": 1, "connects": 1, "conversations": 1, "talk_seconds": 90, "score": 6.0}
    dial = {"activities": 1, "dials": 1, "connects": 1, "score": 3.0}
    both = {"activities": 2, "dials": 2, "connects": 2, "conversations": 1, "talk_seconds": 90, "score": 9.0}
    starts = {
        "day": date(2026, 4, 1),
        "week": date(2026, 3, 30),
        "month": date(2026, 4, 1),
        "quarter": date(2026, 2, 1),
    }
    expected = dict(stored)
    for grain, start in starts.items():
        expected[("account", "acc-1", grain, start)] = both
        expected[("account", "acc-2", grain, start)] = dial
        expected[("deal", "deal-1", grain, start)] = call
        expected[("deal", "deal-2", grain, start)] = dial
    assert restored == expected

    await asyncio.to_thread(upgrade, database_url)

    assert await rollup_rows(db_engine) == stored
