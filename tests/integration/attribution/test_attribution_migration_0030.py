"""Migration 0030: when calendar deletions their source does not date were read gets a table of
its own, empty at first; and back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_undated_deletions_start_empty_hold_a_read_time_and_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0029_contact_former_accounts")
    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, "SELECT * FROM ingest_undated_deletions WHERE tenant_id = 'acme'") == []
    deleted = uuid.UUID("4229b502-420c-5d12-86e8-698141b269c4")
    read_at = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ingest_undated_deletions (tenant_id, activity_id, read_at) VALUES ('acme', :a, :r)"
            ),
            {"a": deleted, "r": read_at},
        )
    assert await rows(
        db_engine, "SELECT activity_id, read_at FROM ingest_undated_deletions WHERE tenant_id = 'acme'"
    ) == [(deleted, read_at)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0029_contact_former_accounts")
    tables = await rows(
        db_engine,
        "SELECT table_name FROM information_schema.tables WHERE table_name = 'ingest_undated_deletions'",
    )
    assert tables == []
    await asyncio.to_thread(upgrade, database_url)
