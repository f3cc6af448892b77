"""Metrics never lets a lower revision's contribution replace a higher one's.

Attribution raises the version with every revision it publishes; should a version still carry
a lower revision than the one counted (a zombie producer, a replay of old versions), the
contribution keeps the higher revision's facts, in one batch and across batches.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .metrics_support import apply, attributed, create_tenant


async def counted(engine: AsyncEngine) -> list[tuple[int, int, int, int]]:
    """(activity number, revision, version, talk seconds) of every contribution."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT activity_id, revision, version, talk_seconds FROM metric_contributions ORDER BY 1")
        )
        return [(r.activity_id.int, r.revision, r.version, r.talk_seconds) for r in rows]


async def rep_talk_seconds(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        total = await conn.scalar(
            text(
                "SELECT sum(talk_seconds) FROM metric_rollups "
                "WHERE level = 'rep' AND entity_id = 'rep-1' AND granularity = 'day'"
            )
        )
        return int(total or 0)


async def test_a_lower_revision_never_replaces_a_higher_ones_contribution(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    five = attributed(activity=1, version=1, revision=5, duration_seconds=50)
    four_later_version = attributed(activity=1, version=2, revision=4, duration_seconds=40)
    # In one batch: the higher revision wins even against a higher version.
    await apply(db_engine, [five, four_later_version])
    assert await counted(db_engine) == [(1, 5, 1, 50)]
    # Across batches: the same.
    await apply(db_engine, [four_later_version])
    assert await counted(db_engine) == [(1, 5, 1, 50)]
    # A re-match of revision 5 (a new version, same revision) replaces it; a repeat does nothing.
    rematched = attributed(activity=1, version=3, revision=5, duration_seconds=50, deal_id="deal-2")
    await apply(db_engine, [rematched, rematched])
    assert await counted(db_engine) == [(1, 5, 3, 50)]
    six = attributed(activity=1, version=4, revision=6, duration_seconds=60)
    await apply(db_engine, [six, five])
    assert await counted(db_engine) == [(1, 6, 4, 60)]
    assert await rep_talk_seconds(db_engine) == 60
