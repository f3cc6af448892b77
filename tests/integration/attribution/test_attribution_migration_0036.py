"""Migration 0036: the held sweep's index by tenant, then start (``activities_scheduled_by_tenant``,
0035's predicate), beside the one by start alone (kept: the previous release looks for it); the
sweep's two looks read through it; and back. An invalid index left by a failed concurrent build is
built again; the DDL waits a bounded time for its lock."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from services.attribution.adapters.repository import (
    SCHEDULED_MEETINGS_INDEX,
    lock_ended_scheduled_meetings,
    tenants_with_ended_meetings,
)
from tests.integration.attribution.attribution_support import rows

BEFORE = "0035_retracted_activities"
OLD = "activities_scheduled_meetings"
DAY = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
#: 0035's predicate, as the catalogue prints it.
PREDICATE = "((kind = 'meeting'::text) AND (outcome = 'scheduled'::text) AND (NOT retracted))"
#: (name, columns, predicate) of the sweep's indexes, from the catalogue.
INDEXES = (
    "SELECT i.relname, pg_get_indexdef(x.indexrelid, 1, true) || ',' || pg_get_indexdef(x.indexrelid, 2, true), "
    "pg_get_expr(x.indpred, x.indrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
    "WHERE i.relname IN ('activities_scheduled_meetings', 'activities_scheduled_by_tenant') ORDER BY i.relname"
)
VALID = (
    "SELECT i.relname, x.indisvalid, x.indisunique FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
    "WHERE i.relname IN ('activities_scheduled_meetings', 'activities_scheduled_by_tenant') ORDER BY i.relname"
)


async def test_the_sweeps_index_goes_by_tenant_and_back(database_url: str, db_engine: AsyncEngine) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert [name for name, *_ in await rows(db_engine, INDEXES)] == [OLD]
    # Two tenants' ended meetings (t-b's earliest started first), one not ended, one retracted.
    stored = [
        ("t-a", 1, DAY - timedelta(hours=2), False),
        ("t-b", 2, DAY - timedelta(hours=3), False),
        ("t-b", 3, DAY - timedelta(hours=1), False),
        ("t-a", 4, DAY - timedelta(minutes=10), False),
        ("t-a", 5, DAY - timedelta(hours=5), True),
    ]
    async with db_engine.begin() as conn:
        for tenant, n, at, retracted in stored:
            await conn.execute(
                text(
                    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, "
                    "outcome, occurred_at, duration_seconds, payload, ingested_at, retracted) "
                    "VALUES (:t, :id, 'calendar', :e, 'meeting', 'outbound', 'scheduled', :at, 1800, '{}', :at, :r)"
                ),
                {"t": tenant, "id": uuid.UUID(int=n), "e": f"ev-{n}", "at": at, "r": retracted},
            )

    await asyncio.to_thread(upgrade, database_url)
    [(name, columns, predicate), kept] = await rows(db_engine, INDEXES)
    assert (name, columns) == (SCHEDULED_MEETINGS_INDEX, "tenant_id,occurred_at")
    assert predicate == PREDICATE
    # The old one is kept, as it was: the previous release's sweep looks for it by name.
    assert kept == (OLD, "occurred_at,", PREDICATE)
    async with db_engine.connect() as conn:
        tenants = await tenants_with_ended_meetings(conn, DAY)
        found = await lock_ended_scheduled_meetings(conn, DAY, 10, tenants)
        await conn.rollback()
    # Tenant by tenant, the one whose earliest ended meeting started first first.
    assert tenants == ["t-b", "t-a"]
    assert found == [("t-b", uuid.UUID(int=2)), ("t-b", uuid.UUID(int=3)), ("t-a", uuid.UUID(int=1))]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    [(name, columns, predicate)] = await rows(db_engine, INDEXES)
    assert (name, columns) == (OLD, "occurred_at,")
    assert predicate == PREDICATE

    # A concurrent build that failed (here a unique index over t-a's two meetings) leaves an
    # invalid index under the new name: the migration builds it again, not IF NOT EXISTS's keep.
    async with db_engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(DBAPIError, match="could not create unique index"):
            await auto.execute(
                text(
                    f"CREATE UNIQUE INDEX CONCURRENTLY {SCHEDULED_MEETINGS_INDEX} ON activities (tenant_id) "
                    "WHERE kind = 'meeting' AND outcome = 'scheduled' AND NOT retracted"
                )
            )
    assert await rows(db_engine, VALID) == [(SCHEDULED_MEETINGS_INDEX, False, True), (OLD, True, False)]
    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, VALID) == [(SCHEDULED_MEETINGS_INDEX, True, False), (OLD, True, False)]
    assert [(n, c) for n, c, _ in await rows(db_engine, INDEXES)] == [
        (SCHEDULED_MEETINGS_INDEX, "tenant_id,occurred_at"),
        (OLD, "occurred_at,"),
    ]


async def test_the_migration_waits_a_bounded_time_for_its_lock(
    database_url: str, db_engine: AsyncEngine
) -> None:
    """A transaction writing to ``activities`` left open: the build waits ``lock_timeout`` (5 s)
    for its lock, then fails with nothing changed (rather than queueing every write behind it);
    once the transaction ends it goes."""
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.connect() as writer:
        await writer.execute(text("LOCK TABLE activities IN ROW EXCLUSIVE MODE"))
        started = time.monotonic()
        migrating = asyncio.ensure_future(asyncio.to_thread(upgrade, database_url))
        try:
            done, _ = await asyncio.wait({migrating}, timeout=30)
            assert done, "the migration still waits for its lock after 30 s"
            with pytest.raises(DBAPIError, match="lock timeout"):
                migrating.result()
            assert 4 < time.monotonic() - started < 30
        finally:
            await writer.rollback()
            await migrating if not migrating.done() else None
    assert [name for name, *_ in await rows(db_engine, INDEXES)] == [OLD]
    await asyncio.to_thread(upgrade, database_url)
    assert [name for name, *_ in await rows(db_engine, INDEXES)] == [SCHEDULED_MEETINGS_INDEX, OLD]
