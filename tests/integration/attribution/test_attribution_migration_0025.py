"""Migration 0025: the phones a CRM contact's record dropped get a table of their own, empty for
the rows held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_contact_former_phones_start_empty_hold_a_dropped_number_and_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0024_contact_unread_phones")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, updated_at) "
                "VALUES ('acme', 'con-m23', 'Nia', '{}', '{+14155550140}', :u)"
            ),
            {"u": datetime(2026, 11, 15, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, "SELECT * FROM ref_contact_former_phones WHERE tenant_id = 'acme'") == []
    until = datetime(2026, 11, 20, tzinfo=UTC)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contact_former_phones (tenant_id, phone, contact_id, until, account_id) "
                "VALUES ('acme', '+14155550140', 'con-m23', :u, 'acc-1')"
            ),
            {"u": until},
        )
    assert await rows(
        db_engine,
        "SELECT phone, contact_id, until, account_id, shared_with FROM ref_contact_former_phones "
        "WHERE tenant_id = 'acme'",
    ) == [("+14155550140", "con-m23", until, "acc-1", [])]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0024_contact_unread_phones")
    tables = await rows(
        db_engine,
        "SELECT table_name FROM information_schema.tables WHERE table_name = 'ref_contact_former_phones'",
    )
    assert tables == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_contacts WHERE contact_id = 'con-m23'"))
    await asyncio.to_thread(upgrade, database_url)
