"""Migration 0033: accounts gain an account type and a relationship, null for the rows held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_accounts_gain_a_null_type_and_relationship_and_lose_them_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0032_scheduled_meetings")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_accounts (tenant_id, account_id, name, domains, updated_at) "
                "VALUES ('acme', 'acc-m33', 'Reseller', '{reseller.example}', :u)"
            ),
            {"u": datetime(2026, 11, 15, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(
        db_engine,
        "SELECT account_id, account_type, relationship FROM ref_accounts WHERE account_id = 'acc-m33'",
    ) == [("acc-m33", None, None)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0032_scheduled_meetings")
    columns = await rows(
        db_engine,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'ref_accounts' "
        "AND column_name IN ('account_type', 'relationship')",
    )
    assert columns == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_accounts WHERE account_id = 'acc-m33'"))
    await asyncio.to_thread(upgrade, database_url)
