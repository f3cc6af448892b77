"""``repository.save_attributions``: a batch of first decisions is written by a plain insert,
any other batch through the history CTE; both leave exactly the rows the CTE would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.attribution.adapters import repository as repo
from tests.integration.attribution.attribution_support import TENANT, create_tenant, email

DECIDED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _row(activity: Any, version: int, deal: str | None, *, inserted: bool = False) -> dict[str, Any]:
    row = {
        "tenant_id": TENANT,
        "activity_id": activity.activity_id,
        "version": version,
        "status": "attributed" if deal else "unmatched",
        "rep_id": "rep-1",
        "team_id": "team-a",
        "account_id": "acc-1",
        "deal_id": deal,
        "secondary_deal_ids": ["deal-9"] if deal == "deal-2" else [],
        "confidence": 0.5 + version / 10,
        "explanation": {"version": version},
        "is_override": False,
        "decided_at": DECIDED,
        "parked_until": None,
        "occurred_at": activity.occurred_at,
        "kind": "email",
    }
    if inserted:
        row["inserted"] = True
    return row


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The first words of each statement ``save_attributions`` runs, and whether it looks stored
    rows up first (``NOT EXISTS``)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "attributions" in statement and "SELECT pg_" not in statement:
            seen.append(
                " ".join(statement.split()[:3]) + (" NOT EXISTS" if "NOT EXISTS" in statement else "")
            )

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _state(engine: AsyncEngine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with engine.connect() as conn:
        current = await conn.execute(
            text(
                "SELECT activity_id, version, status, deal_id, secondary_deal_ids, confidence, explanation "
                "FROM attributions ORDER BY activity_id"
            )
        )
        superseded = await conn.execute(
            text(
                "SELECT activity_id, version, deal_id, confidence, explanation FROM attribution_superseded "
                "ORDER BY activity_id, version"
            )
        )
        return [tuple(r) for r in current], [tuple(r) for r in superseded]


async def test_first_decisions_then_re_decisions_then_a_mixed_batch(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    at = "2026-11-02T10:00:00Z"
    a, b, c, d = (email(f"s-{i}", "rep@ours.example", "buyer@client.example", at=at) for i in range(4))
    ids = {x.activity_id: name for x, name in ((a, "a"), (b, "b"), (c, "c"), (d, "d"))}

    def named(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return sorted((ids[r[0]], *r[1:]) for r in rows)

    # A batch of first decisions: a plain insert, no speculative insertion, no id looked up first.
    with _statements(db_engine) as seen:
        async with db_engine.begin() as conn:
            assert await repo.store_activities(conn, [a, b]) == {a.activity_id: True, b.activity_id: True}
            await repo.save_attributions(
                conn, [_row(a, 1, "deal-1", inserted=True), _row(b, 1, None, inserted=True)]
            )
    assert seen == ["INSERT INTO attributions"]
    current, superseded = await _state(db_engine)
    assert named(current) == [
        ("a", 1, "attributed", "deal-1", [], 0.6, {"version": 1}),
        ("b", 1, "unmatched", None, [], 0.6, {"version": 1}),
    ]
    assert superseded == []

    # Re-decisions: the current versions are kept as superseded.
    with _statements(db_engine) as seen:
        async with db_engine.begin() as conn:
            await repo.save_attributions(conn, [_row(a, 2, "deal-2"), _row(b, 2, "deal-1")])
    assert seen == ["WITH u AS"]
    current, superseded = await _state(db_engine)
    assert named(current) == [
        ("a", 2, "attributed", "deal-2", ["deal-9"], 0.7, {"version": 2}),
        ("b", 2, "attributed", "deal-1", [], 0.7, {"version": 2}),
    ]
    assert named(superseded) == [("a", 1, "deal-1", 0.6, {"version": 1}), ("b", 1, None, 0.6, {"version": 1})]

    # Mixed: a first decision (c), a re-decision (a) and a stale version (b's 1 again): the CTE.
    with _statements(db_engine) as seen:
        async with db_engine.begin() as conn:
            await repo.store_activities(conn, [c])
            await repo.save_attributions(
                conn, [_row(c, 1, "deal-1", inserted=True), _row(a, 3, None), _row(b, 1, "deal-2")]
            )
    assert seen == ["WITH u AS"]
    current, superseded = await _state(db_engine)
    assert named(current) == [
        ("a", 3, "unmatched", None, [], 0.8, {"version": 3}),
        ("b", 2, "attributed", "deal-1", [], 0.7, {"version": 2}),
        ("c", 1, "attributed", "deal-1", [], 0.6, {"version": 1}),
    ]
    assert named(superseded) == [
        ("a", 1, "deal-1", 0.6, {"version": 1}),
        ("a", 2, "deal-2", 0.7, {"version": 2}),
        ("b", 1, None, 0.6, {"version": 1}),  # the stale copy conflicts with the one kept: nothing new
    ]

    # First decisions, but two versions of one activity: the older must be kept, so the CTE.
    with _statements(db_engine) as seen:
        async with db_engine.begin() as conn:
            await repo.store_activities(conn, [d])
            await repo.save_attributions(
                conn, [_row(d, 2, "deal-2", inserted=True), _row(d, 1, "deal-1", inserted=True)]
            )
    assert seen == ["WITH u AS"]
    current, superseded = await _state(db_engine)
    assert named(current)[3] == ("d", 2, "attributed", "deal-2", ["deal-9"], 0.7, {"version": 2})
    assert named(superseded)[3:] == [("d", 1, "deal-1", 0.6, {"version": 1})]


async def test_a_first_decision_over_a_row_left_without_its_activity_keeps_that_row(
    db_engine: AsyncEngine,
) -> None:
    """Attributions are deleted with their activities, so a first decision finds no row; one left
    behind all the same is kept as it is, and the batch (its other rows) goes through."""
    await create_tenant(db_engine)
    a, b = (
        email(f"o-{i}", "rep@ours.example", "buyer@client.example", at="2026-11-02T10:00:00Z")
        for i in range(2)
    )
    async with db_engine.begin() as conn:
        await repo.store_activities(conn, [a])
        await repo.save_attributions(conn, [_row(a, 1, "deal-1", inserted=True)])
        await conn.execute(text("DELETE FROM activities WHERE activity_id = :a"), {"a": a.activity_id})
    with _statements(db_engine) as seen:
        async with db_engine.begin() as conn:
            assert await repo.store_activities(conn, [a, b]) == {a.activity_id: True, b.activity_id: True}
            await repo.save_attributions(
                conn, [_row(a, 1, "deal-2", inserted=True), _row(b, 1, "deal-1", inserted=True)]
            )
    # The plain insert meets the row (the primary key), is rolled back to its savepoint, and the
    # batch is written again looking each id up.
    assert seen == ["INSERT INTO attributions", "INSERT INTO attributions NOT EXISTS"]
    current, superseded = await _state(db_engine)
    assert sorted(current, key=lambda r: r[0] != a.activity_id) == [
        (a.activity_id, 1, "attributed", "deal-1", [], 0.6, {"version": 1}),
        (b.activity_id, 1, "attributed", "deal-1", [], 0.6, {"version": 1}),
    ]
    assert superseded == []
