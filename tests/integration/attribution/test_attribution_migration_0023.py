"""Migration 0023: reps and contacts gain their phones' extensions, none for the rows held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_reps_and_contacts_gain_empty_phone_extensions_and_lose_them_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0022_crm_countries")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, updated_at) "
                "VALUES ('acme', 'con-m22', 'Bo', '{}', '{+14155550200}', :u)"
            ),
            {"u": datetime(2026, 11, 15, tzinfo=UTC)},
        )
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, emails, phones, updated_at) "
                "VALUES ('acme', 'rep-m22', 'Cy', '{}', '{+14155550900}', :u)"
            ),
            {"u": datetime(2026, 11, 15, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(
        db_engine,
        "SELECT contact_id, phones, phone_extensions FROM ref_contacts WHERE contact_id = 'con-m22'",
    ) == [("con-m22", ["+14155550200"], [])]
    assert await rows(
        db_engine, "SELECT rep_id, phones, phone_extensions FROM ref_reps WHERE rep_id = 'rep-m22'"
    ) == [("rep-m22", ["+14155550900"], [])]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0022_crm_countries")
    columns = await rows(
        db_engine,
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'phone_extensions' "
        "AND table_name IN ('ref_reps', 'ref_contacts')",
    )
    assert columns == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_contacts WHERE contact_id = 'con-m22'"))
        await conn.execute(text("DELETE FROM ref_reps WHERE rep_id = 'rep-m22'"))
    await asyncio.to_thread(upgrade, database_url)
