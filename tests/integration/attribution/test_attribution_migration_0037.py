"""Migration 0037: ``held_sweep_outbox``, the held sweep's versions waiting to be published,
each read back as it was queued; and back, only once empty (a version still queued is never lost)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.attribution_fast import Attributed, AttributedFacts, decode_encoded
from libs.common.db.migrate import alembic_config, upgrade
from services.attribution.adapters import repository as repo
from tests.integration.attribution.attribution_support import rows

BEFORE = "0036_scheduled_by_tenant"
TABLE = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'held_sweep_outbox'"
AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def _held(n: int) -> Attributed:
    return Attributed(
        tenant_id="t-0037",
        activity_id=uuid.UUID(int=n),
        version=2,
        status=AttributionStatus.ATTRIBUTED,
        rep_id="rep-ana",
        deal_id="deal-1",
        confidence=0.9,
        facts=AttributedFacts(
            kind=ActivityKind.MEETING,
            direction=Direction.OUTBOUND,
            outcome=Outcome.HELD,
            occurred_at=AT,
            duration_seconds=1800,
            external_participants=1,
            external_contact_ids=("con-dana",),
            revision=1,
        ),
        decided_at=AT,
        explanation={"rule_path": "owner_participates"},
    )


async def test_the_held_sweeps_queue_and_back(database_url: str, db_engine: AsyncEngine) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, TABLE) == [(0,)]
    await asyncio.to_thread(upgrade, database_url)

    async with db_engine.begin() as conn:
        await repo.queue_held(conn, [_held(1), _held(2)])
    async with db_engine.begin() as one, db_engine.begin() as two:
        first = await repo.lock_queued_held(one, 1)
        # Another process publishing meanwhile takes the next.
        second = await repo.lock_queued_held(two, 10)
        await repo.clear_queued_held(one, [row.outbox_id for row in first])
    assert [decode_encoded(row.event) for row in first] == [_held(1)]
    assert [decode_encoded(row.event) for row in second] == [_held(2)]
    assert await rows(db_engine, "SELECT activity_id, version FROM held_sweep_outbox") == [
        (uuid.UUID(int=2), 2)
    ]

    # One version still queued: the downgrade refuses, saying how many and what to do; the
    # queue is kept as it was.
    with pytest.raises(
        RuntimeError, match=r"holds 1 version\(s\) not yet published.*Let the held sweep publish"
    ):
        await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, "SELECT activity_id, version FROM held_sweep_outbox") == [
        (uuid.UUID(int=2), 2)
    ]

    # Published (and cleared), the downgrade goes.
    async with db_engine.begin() as conn:
        await repo.clear_queued_held(conn, [row.outbox_id for row in await repo.lock_queued_held(conn, 10)])
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, TABLE) == [(0,)]
    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, TABLE) == [(1,)]
