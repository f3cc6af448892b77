"""Migration 0048: a contact's identities are an index range, which a re-match window's contacts
are read through; and back."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

BEFORE = "0047_connector_claims"
INDEX = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ref_contact_identities_contact'"


async def test_a_contacts_identities_are_an_index_range_and_it_goes_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, INDEX) == []

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, INDEX) == [
        (
            "CREATE INDEX ref_contact_identities_contact ON public.ref_contact_identities "
            "USING btree (tenant_id, contact_id)",
        )
    ]
    async with db_engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await conn.execute(
                text(
                    "EXPLAIN SELECT identity FROM ref_contact_identities "
                    "WHERE tenant_id = 'acme' AND contact_id = 'con-1'"
                )
            )
        )
        await conn.rollback()
    assert "ref_contact_identities_contact" in plan

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, INDEX) == []
    await asyncio.to_thread(upgrade, database_url)
