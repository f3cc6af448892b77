"""Migration 0022: contacts and accounts gain a country, null for the rows held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_contacts_and_accounts_gain_a_null_country_and_lose_it_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0021_rep_absences")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_accounts (tenant_id, account_id, name, domains, updated_at) "
                "VALUES ('acme', 'acc-m21', 'Buyer', '{buyer.example}', :u)"
            ),
            {"u": datetime(2026, 11, 15, tzinfo=UTC)},
        )
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, account_id, updated_at) "
                "VALUES ('acme', 'con-m21', 'Bo', '{}', '{+442079460958}', 'acc-m21', :u)"
            ),
            {"u": datetime(2026, 11, 15, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(
        db_engine, "SELECT account_id, country FROM ref_accounts WHERE account_id = 'acc-m21'"
    ) == [("acc-m21", None)]
    assert await rows(
        db_engine, "SELECT contact_id, phones, country FROM ref_contacts WHERE contact_id = 'con-m21'"
    ) == [("con-m21", ["+442079460958"], None)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0021_rep_absences")
    columns = await rows(
        db_engine,
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'country' "
        "AND table_name IN ('ref_accounts', 'ref_contacts')",
    )
    assert columns == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_contacts WHERE contact_id = 'con-m21'"))
        await conn.execute(text("DELETE FROM ref_accounts WHERE account_id = 'acc-m21'"))
    await asyncio.to_thread(upgrade, database_url)
