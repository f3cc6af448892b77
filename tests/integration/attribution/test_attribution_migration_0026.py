"""Migration 0026: each source's deal of a meeting gets a column on ``activities``, empty for the
rows held; and back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_activity_source_deals_start_empty_hold_a_crm_link_and_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0025_contact_former_phones")
    at = datetime(2026, 11, 25, 17, tzinfo=UTC)
    held = uuid.UUID("6f1e2d3c-4b5a-4978-8665-544332211000")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome, "
                "occurred_at, duration_seconds, revision, payload, ingested_at) VALUES ('acme', :id, 'hubspot', "
                "'hs-m26', 'meeting', 'outbound', 'held', :at, 1800, 1, '{}', :at)"
            ),
            {"id": held, "at": at},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, "SELECT source_deals FROM activities WHERE external_id = 'hs-m26'") == [
        (None,)
    ]
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE activities SET source_deals = '{\"hubspot\": [1, \"3302\"]}' WHERE external_id = 'hs-m26'"
            )
        )
    assert await rows(db_engine, "SELECT source_deals FROM activities WHERE external_id = 'hs-m26'") == [
        ({"hubspot": [1, "3302"]},)
    ]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0025_contact_former_phones")
    columns = await rows(
        db_engine,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'activities' AND column_name = 'source_deals'",
    )
    assert columns == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM activities WHERE external_id = 'hs-m26'"))
    await asyncio.to_thread(upgrade, database_url)
