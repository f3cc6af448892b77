"""Migration 0041: a settings job's heartbeat and the time before which it is not claimed
(``settings_jobs.heartbeat_at``, ``run_after``); and back."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade

COLUMN = (
    "SELECT count(*) FROM information_schema.columns "
    "WHERE table_name = 'settings_jobs' AND column_name IN ('heartbeat_at', 'run_after')"
)


async def test_settings_jobs_gain_a_heartbeat_and_a_time_to_run_after_and_lose_them_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0040_crm_times_ahead")
    async with db_engine.connect() as conn:
        assert await conn.scalar(text(COLUMN)) == 0
    await asyncio.to_thread(upgrade, database_url)
    async with db_engine.connect() as conn:
        assert await conn.scalar(text(COLUMN)) == 2
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0040_crm_times_ahead")
    async with db_engine.connect() as conn:
        assert await conn.scalar(text(COLUMN)) == 0
    await asyncio.to_thread(upgrade, database_url)
