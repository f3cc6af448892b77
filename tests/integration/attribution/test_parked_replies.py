"""``repository.parked_replies``: the parked, automatic replies of the given threads after each
thread's moment, oldest first, without the excluded ones (each thread looked up on its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.attribution.adapters import repository as repo
from tests.integration.attribution.attribution_support import TENANT, create_tenant, email

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _row(activity_id: Any, occurred_at: datetime, parked: bool, override: bool = False) -> dict[str, Any]:
    return {
        "tenant_id": TENANT,
        "activity_id": activity_id,
        "version": 1,
        "status": "unmatched",
        "rep_id": None,
        "team_id": None,
        "account_id": None,
        "deal_id": None,
        "secondary_deal_ids": [],
        "confidence": 0.0,
        "explanation": {"rule_path": "unmatched"},
        "is_override": override,
        "decided_at": NOW,
        "parked_until": NOW + timedelta(days=7) if parked else None,
        "occurred_at": occurred_at,
        "kind": "email",
    }


async def test_parked_replies_of_threads(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    day = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    # (external id, thread, hours after ``day``, parked, override)
    spec = [
        ("a0", "t-a", 0, True, False),  # the thread's moment itself: not after it
        ("a1", "t-a", 2, True, False),
        ("a2", "t-a", 1, True, False),
        ("a3", "t-a", 3, False, False),  # settled: not parked
        ("a4", "t-a", 4, True, True),  # an override: never
        ("a5", "t-a", 5, True, False),  # excluded by the caller
        ("b0", "t-b", -1, True, False),  # before the thread's moment
        ("b1", "t-b", 6, True, False),
        ("c1", "t-c", 7, True, False),  # a thread not asked for
        ("n1", None, 8, True, False),  # no thread
    ]
    activities = [
        email(
            x,
            "rep@ours.example",
            "buyer@client.example",
            at=(day + timedelta(hours=h)).isoformat(),
            thread_id=t,
        )
        for x, t, h, _, _ in spec
    ]
    ids = {x: a.activity_id for (x, *_), a in zip(spec, activities, strict=True)}
    async with db_engine.begin() as conn:
        await repo.store_activities(conn, activities)
        await repo.save_attributions(
            conn,
            [
                _row(a.activity_id, a.occurred_at, p, o)
                for (_, _, _, p, o), a in zip(spec, activities, strict=True)
            ],
        )
        found = await repo.parked_replies(
            conn, TENANT, {"t-a": day, "t-b": day, "t-z": day}, [ids["a5"]], NOW, limit=10
        )
        assert found == [ids["a2"], ids["a1"], ids["b1"]]
        assert await repo.parked_replies(conn, TENANT, {"t-a": day}, [], NOW, limit=2) == [
            ids["a2"],
            ids["a1"],
        ]
        assert await repo.parked_replies(conn, TENANT, {}, [], NOW, limit=10) == []
        assert (
            await repo.parked_replies(conn, TENANT, {"t-a": day}, [], NOW + timedelta(days=8), limit=10) == []
        )


async def test_store_activities_tells_inserted_rows_from_newer_revisions(db_engine: AsyncEngine) -> None:
    """Only an inserted activity skips the read of its current attribution (``attribute_batch``)."""
    await create_tenant(db_engine)
    at = "2026-11-02T10:00:00Z"
    first = email("s-1", "rep@ours.example", "buyer@client.example", at=at, revision=1)
    other = email("s-2", "rep@ours.example", "buyer@client.example", at=at, revision=1)
    newer = email("s-1", "rep@ours.example", "buyer@client.example", at=at, revision=2)
    fresh = email("s-3", "rep@ours.example", "buyer@client.example", at=at, revision=1)
    async with db_engine.begin() as conn:
        assert await repo.store_activities(conn, [first, other]) == {
            first.activity_id: True,
            other.activity_id: True,
        }
    async with db_engine.begin() as conn:
        # s-1 advanced (updated), s-2 unchanged (not returned), s-3 new.
        assert await repo.store_activities(conn, [newer, other, fresh]) == {
            first.activity_id: False,
            fresh.activity_id: True,
        }
        # Inserted earlier in the same transaction, then advanced: an update all the same.
        again = email("s-3", "rep@ours.example", "buyer@client.example", at=at, revision=2)
        assert await repo.store_activities(conn, [again]) == {fresh.activity_id: False}
