"""Migration 0046: the names a CRM deal had before a rename get a table of their own, empty for
the rows held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows


async def test_deal_former_names_start_empty_hold_a_rename_and_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0045_rep_unread_phones")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_deals (tenant_id, deal_id, name, account_id, owner_rep_id, stage, is_closed, "
                "is_won, created_at, contacts, updated_at) VALUES ('acme', 'deal-m45', 'Acme - HR Suite', "
                "'acc-1', 'rep-1', 'proposal', false, false, :u, '[]', :u)"
            ),
            {"u": datetime(2026, 11, 10, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, "SELECT * FROM ref_deal_former_names WHERE tenant_id = 'acme'") == []
    until = datetime(2026, 11, 10, tzinfo=UTC)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_deal_former_names (tenant_id, deal_id, until, name) "
                "VALUES ('acme', 'deal-m45', :u, 'Acme - Payroll Rollout')"
            ),
            {"u": until},
        )
    assert await rows(
        db_engine, "SELECT deal_id, until, name FROM ref_deal_former_names WHERE tenant_id = 'acme'"
    ) == [("deal-m45", until, "Acme - Payroll Rollout")]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0045_rep_unread_phones")
    tables = await rows(
        db_engine,
        "SELECT table_name FROM information_schema.tables WHERE table_name = 'ref_deal_former_names'",
    )
    assert tables == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_deals WHERE deal_id = 'deal-m45'"))
    await asyncio.to_thread(upgrade, database_url)
