"""Migration 0031: the guests who removed a meeting from their calendar get a table of their own,
empty at first; and back."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_meeting_removals_start_empty_hold_a_guest_and_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0030_undated_deletions")
    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, "SELECT * FROM meeting_removals WHERE tenant_id = 'acme'") == []
    meeting = uuid.UUID("3c089310-66a7-5624-8afb-4ec320799c13")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO meeting_removals (tenant_id, activity_id, address, answer, revision) "
                "VALUES ('acme', :a, 'ana.seller@acme.example', 'accepted', 1795176000001)"
            ),
            {"a": meeting},
        )
    assert await rows(
        db_engine,
        "SELECT activity_id, address, answer, revision FROM meeting_removals WHERE tenant_id = 'acme'",
    ) == [(meeting, "ana.seller@acme.example", "accepted", 1795176000001)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0030_undated_deletions")
    tables = await rows(
        db_engine, "SELECT table_name FROM information_schema.tables WHERE table_name = 'meeting_removals'"
    )
    assert tables == []
    await asyncio.to_thread(upgrade, database_url)
