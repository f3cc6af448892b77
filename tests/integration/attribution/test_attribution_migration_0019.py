"""Migration 0019: the domains of the accounts held merged are filed under them (their survivor's
for attribution); deleted and live accounts are left as they were; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade

_ACCOUNTS: tuple[tuple[str, str, list[str], bool, str | None], ...] = (
    # tenant, account, domains, deleted, merged_into
    ("acme", "acc-1", ["buyer.example"], False, None),
    ("acme", "acc-2", ["other.example", "other.io"], False, "acc-1"),
    ("acme", "acc-3", ["gone.example"], True, None),
    ("acme", "acc-4", ["gone-merged.example"], True, "acc-1"),
    ("globex", "acc-2", ["other.example"], False, None),
)


async def _domains(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tenant_id, domain, account_id FROM ref_account_domains ORDER BY 1, 2, 3")
        )
        return [tuple(r) for r in rows]


async def test_merged_accounts_domains_are_filed_under_them_and_removed_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0018_inactive_reps_left")
    async with db_engine.begin() as conn:
        for tenant, account, domains, deleted, merged_into in _ACCOUNTS:
            await conn.execute(
                text(
                    "INSERT INTO ref_accounts (tenant_id, account_id, name, domains, updated_at, deleted, merged_into) "
                    "VALUES (:t, :a, :a, :d, :u, :x, :m)"
                ),
                {
                    "t": tenant,
                    "a": account,
                    "d": domains,
                    "u": datetime(2026, 11, 15, tzinfo=UTC),
                    "x": deleted,
                    "m": merged_into,
                },
            )
            if not deleted and merged_into is None:
                for domain in domains:
                    await conn.execute(
                        text(
                            "INSERT INTO ref_account_domains (tenant_id, domain, account_id) VALUES (:t, :d, :a)"
                        ),
                        {"t": tenant, "d": domain, "a": account},
                    )
    before = await _domains(db_engine)

    await asyncio.to_thread(upgrade, database_url)
    assert await _domains(db_engine) == [
        ("acme", "buyer.example", "acc-1"),
        ("acme", "other.example", "acc-2"),
        ("acme", "other.io", "acc-2"),
        ("globex", "other.example", "acc-2"),
    ]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0018_inactive_reps_left")
    assert await _domains(db_engine) == before
    await asyncio.to_thread(upgrade, database_url)
