"""Versioned scoring models: history rescored in SQL, exactly, and never interleaved with batches."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind
from services.metrics.adapters.scoring import ScoringModelCache, rescore_moved
from services.metrics.domain.scoring import ScoredActivity, ScoringModel
from services.metrics.handlers import drain_tenant
from services.metrics.refresher import ReadModelRefresher

from .metrics_support import (
    apply,
    attributed,
    contribution_rows,
    create_tenant,
    new_deps,
    rollup_rows,
    save_scoring_model,
    weighted,
)

# Weights that are exact in binary floating point, so sums are exact whatever their order.
CALLS_FIRST = ScoringModel(
    version=1,
    activity_weights={
        ScoredActivity.CALL_DIALLED: 0.5,
        ScoredActivity.CALL_CONNECTED: 4.0,
        ScoredActivity.EMAIL_SENT: 1.5,
        ScoredActivity.MEETING_BOOKED: 0.25,
        ScoredActivity.MEETING_HELD: 2.0,
    },
    external_meeting_bonus=8.0,
)
MEETINGS_ONLY = ScoringModel(version=2, activity_weights={ScoredActivity.MEETING_HELD: 10.0})
DAY = date(2026, 11, 24)


async def _applied_version(engine: AsyncEngine, tenant_id: str = "acme") -> int:
    async with engine.connect() as conn:
        version: int = (
            await conn.execute(
                text("SELECT applied_version FROM scoring_state WHERE tenant_id = :t"), {"t": tenant_id}
            )
        ).scalar_one()
        return version


async def _assert_scored_with(engine: AsyncEngine, model: ScoringModel, tenant_id: str = "acme") -> None:
    for row in (await rollup_rows(engine, tenant_id)).values():
        assert row.get("score", 0.0) == weighted(row, model)
    for contribution in (await contribution_rows(engine, tenant_id)).values():
        assert contribution["score"] == weighted(contribution, model)


async def test_a_new_model_rescores_history_without_any_activity_flowing(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    await apply(
        db_engine,
        [
            attributed(activity=1),
            attributed(activity=2, kind=ActivityKind.EMAIL),
            attributed(activity=3, kind=ActivityKind.MEETING),
        ],
    )
    rows = await rollup_rows(db_engine)
    assert rows[("rep", "rep-1", "day", DAY)]["score"] == 3.0 + 1.0 + 13.0
    assert await _applied_version(db_engine) == 0  # the built-in default

    await save_scoring_model(db_engine, "acme", CALLS_FIRST)
    refresher = ReadModelRefresher(db_engine, ScoringModelCache(), interval_seconds=60)
    await refresher.tick()

    assert await _applied_version(db_engine) == 1
    rows = await rollup_rows(db_engine)
    # call 0.5 + 4, email 1.5, external held meeting 0.25 + 2 + 8
    assert rows[("rep", "rep-1", "day", DAY)]["score"] == 4.5 + 1.5 + 10.25
    assert rows[("team", "team-1", "quarter", date(2026, 10, 1))]["score"] == 16.25
    assert {n: c["score"] for n, c in (await contribution_rows(db_engine)).items()} == {
        1: 4.5,
        2: 1.5,
        3: 10.25,
    }
    await _assert_scored_with(db_engine, CALLS_FIRST)


async def test_batches_score_with_the_applied_model_until_the_rescore_moves_history_and_them(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    deps = new_deps(db_engine)
    await apply(db_engine, [attributed(activity=1)], deps)
    await save_scoring_model(db_engine, "acme", CALLS_FIRST)

    # A batch does not rescore the tenant's history itself (that would hold every tenant of the
    # batch for the rescore's length): it scores with the model applied, the default's 3 a call.
    await apply(db_engine, [attributed(activity=2)], deps)
    assert await _applied_version(db_engine) == 0
    assert (await rollup_rows(db_engine))[("rep", "rep-1", "day", DAY)]["score"] == 6.0
    assert await rescore_moved(db_engine, deps.models, None) == 1
    assert await _applied_version(db_engine) == 1
    assert (await rollup_rows(db_engine))[("rep", "rep-1", "day", DAY)]["score"] == 9.0

    await save_scoring_model(db_engine, "acme", MEETINGS_ONLY)
    assert await rescore_moved(db_engine, deps.models, None) == 1
    # A retraction under the new model subtracts the rescored contribution, not the old one.
    await apply(db_engine, [attributed(activity=1, version=2, rep_id="rep-2")], deps)
    await apply(db_engine, [attributed(activity=4, kind=ActivityKind.MEETING)], deps)

    assert await _applied_version(db_engine) == 2
    rows = await rollup_rows(db_engine)
    assert rows[("rep", "rep-1", "day", DAY)] == {
        "activities": 2,
        "dials": 1,
        "connects": 1,
        "meetings_booked": 1,
        "meetings_held": 1,
        "score": 10.0,
    }
    assert "score" not in rows[("rep", "rep-2", "day", DAY)]
    await _assert_scored_with(db_engine, MEETINGS_ONLY)


async def test_rescoring_racing_with_concurrent_batches_leaves_every_score_consistent(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine)
    kinds = (ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING)

    async def consumer(first: int) -> None:
        deps = new_deps(db_engine)  # one consumer process each: caches are not shared
        for number in range(first, first + 30, 3):
            batch = [
                attributed(activity=number + i, kind=kinds[(number + i) % 3], rep_id=f"rep-{i}")
                for i in range(3)
            ]
            await apply(db_engine, batch, deps)

    async def gateway_and_refresher() -> None:
        models = ScoringModelCache()
        for model in (CALLS_FIRST, MEETINGS_ONLY):
            await asyncio.sleep(0.05)
            await save_scoring_model(db_engine, "acme", model)
            await rescore_moved(db_engine, models, None)

    await asyncio.gather(consumer(1000), consumer(2000), consumer(3000), gateway_and_refresher())
    await rescore_moved(db_engine, ScoringModelCache(), None)
    # Batches meeting a rescore set the tenant's versions aside: the drainer applies them after.
    await drain_tenant(new_deps(db_engine), "acme")

    assert await _applied_version(db_engine) == 2
    assert len(await contribution_rows(db_engine)) == 90
    await _assert_scored_with(db_engine, MEETINGS_ONLY)
    totals = await rollup_rows(db_engine)
    assert (
        sum(
            row.get("meetings_held", 0)
            for (level, _, grain, _), row in totals.items()
            if (level, grain) == ("team", "day")
        )
        == 30
    )


async def test_a_rescore_flags_the_read_models_for_the_refresher(db_engine: AsyncEngine) -> None:
    await create_tenant(db_engine)
    await apply(db_engine, [attributed(activity=1)])
    refresher = ReadModelRefresher(db_engine, ScoringModelCache(), interval_seconds=60)
    assert await refresher.tick() == 1
    assert await _dirty(db_engine) is False

    await save_scoring_model(db_engine, "acme", CALLS_FIRST)
    assert await rescore_moved(db_engine, ScoringModelCache(), None) == 1
    assert await rescore_moved(db_engine, ScoringModelCache(), None) == 0

    assert await _dirty(db_engine) is True
    assert await refresher.tick() == 1
    assert await _dirty(db_engine) is False


async def _dirty(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        flagged: bool = (
            await conn.execute(
                text("SELECT dirty_since IS NOT NULL FROM metric_refresh_state WHERE tenant_id = 'acme'")
            )
        ).scalar_one()
        return flagged
