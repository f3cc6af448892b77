"""Migration 0024: contacts gain the phones no region read, none for the rows held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_contacts_gain_empty_unread_phones_and_lose_them_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0023_phone_extensions")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, updated_at) "
                "VALUES ('acme', 'con-m23', 'Bo', '{}', '{+14155550200}', :u)"
            ),
            {"u": datetime(2026, 11, 15, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(
        db_engine, "SELECT contact_id, phones, unread_phones FROM ref_contacts WHERE contact_id = 'con-m23'"
    ) == [("con-m23", ["+14155550200"], [])]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0023_phone_extensions")
    columns = await rows(
        db_engine,
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'unread_phones'",
    )
    assert columns == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_contacts WHERE contact_id = 'con-m23'"))
    await asyncio.to_thread(upgrade, database_url)
