"""A meeting's sources' deals (``activities.source_deals``) are written by the insert that stores a
new meeting, not by an update right after it; an existing row is updated as before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.attribution.adapters import repository as repo
from tests.integration.attribution.attribution_support import activity, create_tenant, rows

AT = "2026-11-02T10:00:00Z"


def _meeting(source: str, revision: int, deal: str | None) -> Any:
    return activity(
        "m-1",
        source=source,
        kind="meeting",
        outcome="held",
        occurred_at=AT,
        revision=revision,
        participants=[{"email": "rep@ours.example", "role": "organizer"}],
        crm={"deal_id": deal},
    )


async def _updates(conn: AsyncConnection) -> int:
    """Rows of ``activities`` this transaction has updated so far."""
    result = await conn.execute(
        text("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'activities'")
    )
    return int(result.scalar_one())


async def test_a_new_meeting_is_written_once_with_its_sources_deals(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    first, second = _meeting("hubspot", 1, "d-1"), _meeting("hubspot", 2, "d-2")
    key = (first.tenant_id, first.activity_id)
    async with db_engine.begin() as conn:
        # Two revisions of one source in the batch: the newer one's deal is kept.
        assert await repo.store_activities(conn, [first, second]) == {first.activity_id: True}
        held, changed = await repo.record_source_deals(conn, [first, second])
        assert held == {key: {"hubspot": (2, "d-2")}}
        assert changed == set()  # nothing is news for the row inserted now
        assert await _updates(conn) == 0
    assert await rows(db_engine, "SELECT source_deals FROM activities") == [({"hubspot": [2, "d-2"]},)]

    # Another source's word on the stored meeting: recorded by an update, as before.
    other = activity(
        "m-1",
        source="calendar",
        kind="meeting",
        outcome="held",
        occurred_at=AT,
        revision=1,
        participants=[{"email": "rep@ours.example", "role": "organizer"}],
    )
    other = other.model_copy(update={"activity_id": first.activity_id})
    async with db_engine.begin() as conn:
        assert await repo.store_activities(conn, [other]) == {}
        held, changed = await repo.record_source_deals(conn, [other])
        assert held == {key: {"hubspot": (2, "d-2"), "calendar": (1, None)}}
        assert changed == {key}
        assert await _updates(conn) == 1
    assert await rows(db_engine, "SELECT source_deals FROM activities") == [
        ({"calendar": [1, None], "hubspot": [2, "d-2"]},)
    ]
