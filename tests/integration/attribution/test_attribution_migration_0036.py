"""Migration 0036: the held sweep's index by tenant, then start (``activities_scheduled_by_tenant``,
0035's predicate), replaces the one by start alone; the sweep's two looks read through it; and back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
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
    "WHERE i.relname IN ('activities_scheduled_meetings', 'activities_scheduled_by_tenant')"
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
    [(name, columns, predicate)] = await rows(db_engine, INDEXES)
    assert (name, columns) == (SCHEDULED_MEETINGS_INDEX, "tenant_id,occurred_at")
    assert predicate == PREDICATE
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
    await asyncio.to_thread(upgrade, database_url)
    assert [name for name, *_ in await rows(db_engine, INDEXES)] == [SCHEDULED_MEETINGS_INDEX]
