"""Metrics never lets a lower revision's contribution replace a higher one's.

Attribution raises the version with every revision it publishes; should a version still carry
a lower revision than the one counted (a zombie producer, a replay of old versions), the
contribution keeps the higher revision's facts, in one batch and across batches.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.polling import eventually, sessions_waiting

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


async def test_a_new_contribution_inserted_meanwhile_by_another_batch_is_replaced_by_a_newer_version(
    db_engine: AsyncEngine,
) -> None:
    """A batch writes the contributions ``load_contributions`` found absent by a plain insert. If
    another transaction inserted one of them meanwhile (two versions of an activity on two
    instances), the insert waits for it, fails on the primary key, and the batch's rows go
    through the upsert instead: the newer version is kept, the batch's other rows are written."""
    await create_tenant(db_engine)
    await apply(db_engine, [attributed(activity=1, version=1, revision=1, duration_seconds=10)])
    async with db_engine.begin() as conn:
        await conn.execute(text("CREATE TABLE held AS SELECT * FROM metric_contributions"))
        await conn.execute(text("DELETE FROM metric_contributions"))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO metric_contributions"):
            statements.append("upsert" if "ON CONFLICT" in statement else "insert")

    other = await db_engine.connect()
    try:
        await other.begin()
        # Version 1, inserted by "another instance" whose transaction is still open.
        await other.execute(text("INSERT INTO metric_contributions SELECT * FROM held"))
        event.listen(db_engine.sync_engine, "before_cursor_execute", record)
        try:
            batch = asyncio.create_task(
                apply(
                    db_engine,
                    [
                        attributed(activity=1, version=2, revision=1, duration_seconds=20),
                        attributed(activity=2, version=1, revision=1, duration_seconds=30),
                    ],
                )
            )

            await eventually(
                lambda: sessions_waiting(db_engine, "transactionid"),
                lambda waiting: waiting == 1 or batch.done(),
                30,
                "the batch blocked",
            )
            assert not batch.done()  # waiting on the other transaction's key
            await other.commit()
            await asyncio.wait_for(batch, 30)
        finally:
            event.remove(db_engine.sync_engine, "before_cursor_execute", record)
    finally:
        await other.close()
    assert statements == ["insert", "upsert"]
    assert await counted(db_engine) == [(1, 1, 2, 20), (2, 1, 1, 30)]
