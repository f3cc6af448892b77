"""Migration 0047: a mailbox's current claim gets a column, NULL for the mailboxes held; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from libs.common.testing.stack import TEST_SECRET_KEY
from services.connectors.adapters.store import MailboxStore

from .connectors_support import TENANT, connect_google, setup_tenant


async def _columns(db: AsyncEngine) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'connector_mailboxes' AND column_name = 'claimed_at'"
            )
        )
        return [r.column_name for r in rows]


async def test_claimed_at_starts_null_holds_a_claim_and_goes_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await setup_tenant(db_engine, {})
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0046_deal_former_names")
    assert await _columns(db_engine) == []
    async with db_engine.begin() as conn:
        connection_id = await conn.scalar(
            text(
                "INSERT INTO connector_connections (tenant_id, vendor, credentials_encrypted, options) "
                "VALUES (:t, 'google', 'x', '{}') RETURNING connection_id"
            ),
            {"t": TENANT},
        )
        await conn.execute(
            text(
                "INSERT INTO connector_mailboxes (connection_id, tenant_id, provider, address, full_sync_since) "
                "VALUES (:c, :t, 'gmail', 'old@acme.example', :s)"
            ),
            {"c": connection_id, "t": TENANT, "s": datetime(2026, 12, 1, tzinfo=UTC)},
        )

    await asyncio.to_thread(upgrade, database_url)
    async with db_engine.connect() as conn:
        held = await conn.scalar(
            text("SELECT claimed_at FROM connector_mailboxes WHERE address = 'old@acme.example'")
        )
    assert held is None
    store = MailboxStore(db_engine, TEST_SECRET_KEY)
    await connect_google(store, "gmail", ["new@acme.example"], now=datetime.now(UTC))
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM connector_mailboxes WHERE address = 'old@acme.example'"))
    [claimed] = await store.claim_due(1, 300, 0, 1)
    async with db_engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT claimed_at FROM connector_mailboxes WHERE address = 'new@acme.example'")
        )
    assert stored is not None
    assert stored == claimed.claimed_at

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0046_deal_former_names")
    assert await _columns(db_engine) == []
    await asyncio.to_thread(upgrade, database_url)
    assert await _columns(db_engine) == ["claimed_at"]
