"""Migration 0045: ``ref_reps.unread_phones`` (a rep's phones the tenant's region could not
read), empty for the reps held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

TENANT = "acme-0045"
BEFORE = "0044_composed_identities"
COLUMN = "SELECT column_name FROM information_schema.columns WHERE table_name = 'ref_reps' AND column_name = 'unread_phones'"


async def test_reps_held_keep_no_unread_phones_and_the_column_goes_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, COLUMN) == []
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, emails, phones, updated_at) "
                "VALUES (:t, 'rep-ruth', 'Ruth', '{}', ARRAY['+14155550170'], :u)"
            ),
            {"t": TENANT, "u": datetime(2026, 11, 2, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, COLUMN) == [("unread_phones",)]
    assert await rows(
        db_engine, f"SELECT rep_id, phones, unread_phones FROM ref_reps WHERE tenant_id = '{TENANT}'"
    ) == [("rep-ruth", ["+14155550170"], [])]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, COLUMN) == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_reps WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
