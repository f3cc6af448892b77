"""Migration 0027: an account's contacts stating no country are found by the account (an index
range, not every contact of the tenant), a page at a time; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from services.ingest.adapters.repository import (
    accounts_with_contacts_without_country,
    contacts_without_country,
)
from tests.integration.attribution.attribution_support import plan, rows

INDEX = "ref_contacts_without_country_by_account"
LOOKUP = (
    "EXPLAIN SELECT contact_id FROM ref_contacts WHERE tenant_id = 'acme-0026' AND account_id = 'acc-1' "
    "AND country IS NULL AND NOT deleted AND merged_into IS NULL AND contact_id > 'con-a' "
    "ORDER BY contact_id LIMIT 2"
)


async def test_contacts_without_country_are_found_by_account_a_page_at_a_time_and_the_index_goes_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0026_activity_source_deals")
    assert INDEX not in await plan(db_engine, LOOKUP)
    at = datetime(2026, 11, 15, tzinfo=UTC)
    async with db_engine.begin() as conn:
        for contact_id, account_id, country, deleted in [
            ("con-a", "acc-1", None, False),
            ("con-b", "acc-1", None, False),
            ("con-c", "acc-2", None, False),
            ("con-d", "acc-1", "GB", False),
            ("con-e", "acc-1", None, True),
            ("con-f", "acc-1", None, False),
            ("con-g", "acc-3", None, False),
        ]:
            await conn.execute(
                text(
                    "INSERT INTO ref_contacts (tenant_id, contact_id, name, emails, phones, updated_at, "
                    "account_id, country, deleted) VALUES ('acme-0026', :c, '', '{}', '{}', :u, :a, :k, :d)"
                ),
                {"c": contact_id, "u": at, "a": account_id, "k": country, "d": deleted},
            )

    await asyncio.to_thread(upgrade, database_url)
    assert INDEX in await plan(db_engine, LOOKUP)
    held = await accounts_with_contacts_without_country(db_engine, "acme-0026", ["acc-9", "acc-2", "acc-1"])
    assert held == ["acc-1", "acc-2"]
    pages: list[list[str]] = []
    for account in held:
        after: str | None = None
        while True:
            page = await contacts_without_country(db_engine, "acme-0026", account, after, 2)
            pages.append([c.id for c in page])
            if len(page) < 2:
                break
            after = page[-1].id
    # acc-1: con-a, con-b, then con-f (con-d states GB, con-e is deleted); acc-2: con-c.
    assert pages == [["con-a", "con-b"], ["con-f"], ["con-c"]]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0026_activity_source_deals")
    assert await rows(db_engine, f"SELECT indexname FROM pg_indexes WHERE indexname = '{INDEX}'") == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_contacts WHERE tenant_id = 'acme-0026'"))
    await asyncio.to_thread(upgrade, database_url)
