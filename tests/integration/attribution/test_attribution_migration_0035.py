"""Migration 0035: ``activities.retracted`` set for the activities whose version in force retracted
them as deleted at their source, and the held sweep's index rebuilt without them (a deleted
meeting stays ``scheduled`` as its source last stated it, but is no longer stepped over); and back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config
from services.attribution.adapters.repository import lock_ended_scheduled_meetings
from tests.integration.attribution.attribution_support import rows

INDEX = "activities_scheduled_meetings"
BEFORE = "0034_undated_deletion_calendars"
#: Migration 0036 replaces the index (its own test).
AFTER = "0035_retracted_activities"
DAY = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
#: The rows the index holds: its predicate.
IN_INDEX = (
    "SELECT activity_id FROM activities WHERE kind = 'meeting' AND outcome = 'scheduled' "
    "AND NOT retracted AND occurred_at <= :cutoff ORDER BY occurred_at"
)


async def _in_index(engine: AsyncEngine) -> list[int]:
    """The rows the index holds: its predicate leaves the retracted out (read from the catalogue,
    not from a plan, which on a few rows may take another index), and the rows it selects."""
    async with engine.connect() as conn:
        predicate = await conn.execute(
            text(
                "SELECT pg_get_expr(x.indpred, x.indrelid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid WHERE i.relname = :i"
            ),
            {"i": INDEX},
        )
        assert "NOT retracted" in predicate.scalar_one()
        found = await conn.execute(text(IN_INDEX), {"cutoff": DAY})
        return [row.activity_id.int for row in found]


async def test_retracted_activities_are_flagged_and_leave_the_sweeps_index_and_back(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    # (id, kind, outcome, start, version in force: status and rule path): a live scheduled
    # meeting, two deleted at their source (one ended, one not yet), a scheduled meeting excluded
    # otherwise, a deleted call, a meeting restored (its version in force decided it again).
    stored = [
        (1, "meeting", "scheduled", DAY - timedelta(hours=2), "attributed", "owner_participates"),
        (2, "meeting", "scheduled", DAY - timedelta(hours=3), "excluded", "deleted_at_source"),
        (3, "meeting", "scheduled", DAY + timedelta(hours=3), "excluded", "deleted_at_source"),
        (4, "meeting", "scheduled", DAY - timedelta(hours=4), "excluded", "internal_only"),
        (5, "call", "connected", DAY - timedelta(hours=4), "excluded", "deleted_at_source"),
        (6, "meeting", "scheduled", DAY - timedelta(hours=5), "attributed", "owner_participates"),
    ]
    async with db_engine.begin() as conn:
        for n, kind, outcome, at, status, rule_path in stored:
            params = {"id": uuid.UUID(int=n), "e": f"ev-{n}", "k": kind, "o": outcome, "at": at}
            await conn.execute(
                text(
                    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, "
                    "outcome, occurred_at, duration_seconds, payload, ingested_at) "
                    "VALUES ('t-0035', :id, 'calendar', :e, :k, 'outbound', :o, :at, 1800, '{}', :at)"
                ),
                params,
            )
            await conn.execute(
                text(
                    "INSERT INTO attributions (tenant_id, activity_id, version, status, confidence, "
                    "explanation, decided_at, occurred_at, kind) VALUES ('t-0035', :id, 2, :s, 1.0, "
                    "CAST(:x AS jsonb), :at, :at, :k)"
                ),
                {**params, "s": status, "x": f'{{"rule_path": "{rule_path}"}}'},
            )

    await asyncio.to_thread(command.upgrade, alembic_config(database_url), AFTER)
    assert await rows(
        db_engine,
        "SELECT activity_id, retracted FROM activities WHERE tenant_id = 't-0035' ORDER BY activity_id",
    ) == [(uuid.UUID(int=n), n in (2, 3, 5)) for n in range(1, 7)]
    # The index holds the scheduled meetings not retracted alone; the sweep reads through it.
    assert await _in_index(db_engine) == [6, 4, 1]
    async with db_engine.connect() as conn:
        found = await lock_ended_scheduled_meetings(conn, DAY, 10, ["t-0035"])
        await conn.rollback()
    assert found == [("t-0035", uuid.UUID(int=n)) for n in (6, 4, 1)]
    # Its outcome stays as its source last stated it.
    assert await rows(
        db_engine, "SELECT outcome FROM activities WHERE activity_id = :a", {"a": uuid.UUID(int=2)}
    ) == [("scheduled",)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(
        db_engine,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'activities' "
        "AND column_name = 'retracted'",
    ) == [(0,)]
    assert await rows(
        db_engine, "SELECT indexdef LIKE '%retracted%' FROM pg_indexes WHERE indexname = :i", {"i": INDEX}
    ) == [(False,)]
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), AFTER)
    assert await _in_index(db_engine) == [6, 4, 1]


async def test_an_index_built_beforehand_with_the_new_predicate_is_kept(
    database_url: str, db_engine: AsyncEngine
) -> None:
    """docs/operations.md's recipe: the column added, flagged, the index built concurrently under
    another name and renamed; the migration then changes nothing of it."""
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        for statement in (
            "ALTER TABLE activities ADD COLUMN IF NOT EXISTS retracted boolean NOT NULL DEFAULT false",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_scheduled_meetings_next ON activities "
            "(occurred_at) WHERE kind = 'meeting' AND outcome = 'scheduled' AND NOT retracted",
            f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
            f"ALTER INDEX activities_scheduled_meetings_next RENAME TO {INDEX}",
        ):
            await conn.execute(text(statement))
    built = await rows(db_engine, "SELECT c.oid FROM pg_class c WHERE c.relname = :i", {"i": INDEX})
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), AFTER)
    assert await rows(db_engine, "SELECT c.oid FROM pg_class c WHERE c.relname = :i", {"i": INDEX}) == built
