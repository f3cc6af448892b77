"""Migration 0029: the accounts a CRM contact was at before she moved get a table of their own,
empty for the rows held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_contact_former_accounts_start_empty_hold_a_move_and_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0028_tagged_contact_mailboxes")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, account_id, updated_at) "
                "VALUES ('acme', 'con-m28', 'Dee', '{}', '{+14155550160}', 'acc-new', :u)"
            ),
            {"u": datetime(2026, 11, 10, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, "SELECT * FROM ref_contact_former_accounts WHERE tenant_id = 'acme'") == []
    until = datetime(2026, 11, 10, tzinfo=UTC)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_contact_former_accounts (tenant_id, contact_id, until, account_id) "
                "VALUES ('acme', 'con-m28', :u, 'acc-old')"
            ),
            {"u": until},
        )
    assert await rows(
        db_engine,
        "SELECT contact_id, until, account_id FROM ref_contact_former_accounts WHERE tenant_id = 'acme'",
    ) == [("con-m28", until, "acc-old")]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0028_tagged_contact_mailboxes")
    tables = await rows(
        db_engine,
        "SELECT table_name FROM information_schema.tables WHERE table_name = 'ref_contact_former_accounts'",
    )
    assert tables == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_contacts WHERE contact_id = 'con-m28'"))
    await asyncio.to_thread(upgrade, database_url)
