"""Migration 0039: ``GET /v1/accounts?relationship=`` reads its keyset page from an index range of
the tenant's live accounts of that relationship (not every account of the tenant, filtered), with
the query the gateway sends, under a prepared statement's generic plan too; and back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from services.gateway.adapters.crm import list_accounts
from tests.integration.attribution.attribution_support import rows

INDEX = "ref_accounts_live_by_relationship"
TENANT = "acme-0039"


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement run, as sent to the driver (``$1`` placeholders), with its parameters."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


def _literal(value: object) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


async def _gateway_plan(engine: AsyncEngine) -> str:
    """The plan of the gateway's page of partners after ``acc-02``, prepared and planned generic
    (what a pooled connection runs once it has run the statement a few times)."""
    async with engine.connect() as conn:
        with captured(engine) as statements:
            await list_accounts(conn, TENANT, relationship="partner", after="acc-02", limit=3)
        [(statement, parameters)] = statements
        await conn.exec_driver_sql("SET enable_seqscan = off")
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql(f"PREPARE accounts_page AS {statement}")
        explained = await conn.exec_driver_sql(
            f"EXPLAIN EXECUTE accounts_page({', '.join(_literal(p) for p in parameters)})"
        )
        plan = "\n".join(row[0] for row in explained)
        await conn.exec_driver_sql("DEALLOCATE accounts_page")
        await conn.rollback()
    return plan


async def _pages(engine: AsyncEngine, relationship: str | None) -> list[list[str]]:
    pages: list[list[str]] = []
    after: str | None = None
    async with engine.connect() as conn:
        while True:
            page = await list_accounts(conn, TENANT, relationship=relationship, after=after, limit=2)
            pages.append([a["account_id"] for a in page])
            if len(page) < 2:
                return pages
            after = page[-1]["account_id"]


async def test_accounts_by_relationship_are_an_index_range_and_the_index_goes_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0038_ingest_time_blocks")
    assert INDEX not in await _gateway_plan(db_engine)
    async with db_engine.begin() as conn:
        for n, relationship, deleted, merged_into in [
            (1, "partner", False, None),
            (2, "customer", False, None),
            (3, "partner", False, None),
            (4, "partner", True, None),
            (5, None, False, None),
            (6, "partner", False, "acc-01"),
            (7, "partner", False, None),
            (8, "customer", False, None),
        ]:
            await conn.execute(
                text(
                    "INSERT INTO ref_accounts (tenant_id, account_id, updated_at, relationship, deleted, "
                    "merged_into) VALUES (:t, :a, :u, :r, :d, :m)"
                ),
                {
                    "t": TENANT,
                    "a": f"acc-{n:02d}",
                    "u": datetime(2026, 11, 2, tzinfo=UTC),
                    "r": relationship,
                    "d": deleted,
                    "m": merged_into,
                },
            )

    await asyncio.to_thread(upgrade, database_url)
    assert INDEX in await _gateway_plan(db_engine)
    # Live partners only (acc-04 deleted, acc-06 merged away), a page of two at a time.
    assert await _pages(db_engine, "partner") == [["acc-01", "acc-03"], ["acc-07"]]
    assert await _pages(db_engine, None) == [
        ["acc-01", "acc-02"],
        ["acc-03", "acc-05"],
        ["acc-07", "acc-08"],
        [],
    ]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0038_ingest_time_blocks")
    assert await rows(db_engine, f"SELECT indexname FROM pg_indexes WHERE indexname = '{INDEX}'") == []
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM ref_accounts WHERE tenant_id = :t"), {"t": TENANT})
    await asyncio.to_thread(upgrade, database_url)
