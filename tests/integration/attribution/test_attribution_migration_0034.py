"""Migration 0034: an undated deletion is kept under the calendar it was read in, ``''`` for the
rows held (any calendar's, as before); downgrading keeps each activity's latest read."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

DELETED = uuid.UUID("4229b502-420c-5d12-86e8-698141b269c4")
AT_10_05 = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
AT_10_09 = datetime(2026, 11, 25, 10, 9, tzinfo=UTC)


async def test_undated_deletions_held_are_any_calendars_and_one_per_activity_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0033_account_relationships")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ingest_undated_deletions (tenant_id, activity_id, read_at) VALUES ('acme', :a, :r)"
            ),
            {"a": DELETED, "r": AT_10_05},
        )

    await asyncio.to_thread(upgrade, database_url)
    read = "SELECT activity_id, calendar, read_at FROM ingest_undated_deletions WHERE tenant_id = 'acme'"
    assert await rows(db_engine, read) == [(DELETED, "", AT_10_05)]
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ingest_undated_deletions (tenant_id, activity_id, calendar, read_at) "
                "VALUES ('acme', :a, 'ana.seller@acme.example', :r)"
            ),
            {"a": DELETED, "r": AT_10_09},
        )
    assert await rows(db_engine, read + " ORDER BY calendar") == [
        (DELETED, "", AT_10_05),
        (DELETED, "ana.seller@acme.example", AT_10_09),
    ]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0033_account_relationships")
    assert await rows(
        db_engine, "SELECT activity_id, read_at FROM ingest_undated_deletions WHERE tenant_id = 'acme'"
    ) == [(DELETED, AT_10_09)]
    await asyncio.to_thread(upgrade, database_url)
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ingest_undated_deletions WHERE tenant_id = 'acme'"))
