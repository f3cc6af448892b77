"""Migration 0049: ``ref_rep_former_identities`` keeps every holding of an address (keyed by
(tenant, identity, until)), the rows held as they are; and back, keeping each address's latest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

TENANT = "acme-0049"
BEFORE = "0048_identities_by_contact"
INBOX = "sales-emea@acme.example"
HELD = f"SELECT identity, rep_id, until FROM ref_rep_former_identities WHERE tenant_id = '{TENANT}' ORDER BY until"
INSERT = "INSERT INTO ref_rep_former_identities (tenant_id, identity, rep_id, until) VALUES (:t, :i, :r, :u)"
KIM_UNTIL = datetime(2026, 11, 10, tzinfo=UTC)
BO_UNTIL = datetime(2026, 11, 12, tzinfo=UTC)


async def test_an_address_keeps_each_holding_and_downgrade_keeps_the_latest(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.begin() as conn:
        await conn.execute(text(INSERT), {"t": TENANT, "i": INBOX, "r": "rep-kim", "u": KIM_UNTIL})

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, HELD) == [(INBOX, "rep-kim", KIM_UNTIL)]
    async with db_engine.begin() as conn:
        await conn.execute(text(INSERT), {"t": TENANT, "i": INBOX, "r": "rep-bo", "u": BO_UNTIL})
    assert await rows(db_engine, HELD) == [(INBOX, "rep-kim", KIM_UNTIL), (INBOX, "rep-bo", BO_UNTIL)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, HELD) == [(INBOX, "rep-bo", BO_UNTIL)]
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_rep_former_identities WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
