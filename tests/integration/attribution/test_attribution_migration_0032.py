"""Migration 0032: the held sweep finds the meetings still scheduled that ended in a partial index
holding them alone (an index range, not every activity); and back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from services.attribution.adapters.repository import (
    lock_ended_scheduled_meetings,
    tenants_with_ended_meetings,
)
from tests.integration.attribution.attribution_support import plan

INDEX = "activities_scheduled_meetings"
BEFORE = "0031_meeting_removals"
DAY = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
LOOKUP = (
    "EXPLAIN SELECT tenant_id, activity_id FROM activities WHERE kind = 'meeting' AND outcome = 'scheduled' "
    "AND occurred_at <= now() AND occurred_at + duration_seconds * interval '1 second' <= now() "
    "ORDER BY occurred_at LIMIT 500"
)


async def test_ended_scheduled_meetings_are_found_in_their_own_index_and_it_goes_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert INDEX not in await plan(db_engine, LOOKUP)
    # (tenant, id, kind, outcome, start, length): two ended scheduled meetings, one ending after
    # the cutoff, one held, one cancelled, a call.
    stored = [
        ("t-0029", 1, "meeting", "scheduled", DAY - timedelta(hours=2), 1800),
        ("t-0029-b", 2, "meeting", "scheduled", DAY - timedelta(hours=3), 0),
        ("t-0029", 3, "meeting", "scheduled", DAY - timedelta(minutes=20), 1800),
        ("t-0029", 4, "meeting", "held", DAY - timedelta(hours=4), 1800),
        ("t-0029", 5, "meeting", "cancelled", DAY - timedelta(hours=4), 1800),
        ("t-0029", 6, "call", "connected", DAY - timedelta(hours=4), 60),
    ]
    async with db_engine.begin() as conn:
        for tenant, n, kind, outcome, at, length in stored:
            await conn.execute(
                text(
                    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, "
                    "outcome, occurred_at, duration_seconds, payload, ingested_at) "
                    "VALUES (:t, :id, 'calendar', :e, :k, 'outbound', :o, :at, :d, '{}', :at)"
                ),
                {
                    "t": tenant,
                    "id": uuid.UUID(int=n),
                    "e": f"ev-{n}",
                    "k": kind,
                    "o": outcome,
                    "at": at,
                    "d": length,
                },
            )

    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "0032_scheduled_meetings")
    assert INDEX in await plan(db_engine, LOOKUP)
    # Migration 0035 rebuilds it without the retracted meetings, 0036 by tenant (their own tests).
    await asyncio.to_thread(upgrade, database_url)
    async with db_engine.connect() as conn:
        tenants = await tenants_with_ended_meetings(conn, DAY)
        found = await lock_ended_scheduled_meetings(conn, DAY, 10, tenants)
        skipping = await lock_ended_scheduled_meetings(
            conn, DAY, 10, tenants, skipped=[("t-0029-b", uuid.UUID(int=2))]
        )
        tenant_out = await tenants_with_ended_meetings(conn, DAY, tenants_out=["t-0029"])
        first = await lock_ended_scheduled_meetings(conn, DAY, 1, tenants)
        since = DAY - timedelta(minutes=150)
        recent = await lock_ended_scheduled_meetings(
            conn,
            DAY,
            10,
            await tenants_with_ended_meetings(conn, DAY, started_after=since),
            started_after=since,
        )
        backlog = await lock_ended_scheduled_meetings(
            conn, DAY, 10, await tenants_with_ended_meetings(conn, DAY, started_by=since), started_by=since
        )
        await conn.rollback()
    assert tenants == ["t-0029-b", "t-0029"]
    assert found == [("t-0029-b", uuid.UUID(int=2)), ("t-0029", uuid.UUID(int=1))]
    assert skipping == [("t-0029", uuid.UUID(int=1))]
    assert tenant_out == ["t-0029-b"]
    assert first == [("t-0029-b", uuid.UUID(int=2))]
    assert (recent, backlog) == ([("t-0029", uuid.UUID(int=1))], [("t-0029-b", uuid.UUID(int=2))])

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.connect() as conn:
        assert [
            tuple(r)
            for r in await conn.execute(text(f"SELECT 1 FROM pg_indexes WHERE indexname = '{INDEX}'"))
        ] == []
    await asyncio.to_thread(upgrade, database_url)
