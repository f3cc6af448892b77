"""A time zone or fiscal calendar change rebuilds the tenant's period rollups exactly, in the background."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind
from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.jobs import REATTRIBUTE, REBUILD_ROLLUPS, Job, JobWorker, get_job
from libs.common.tenant_settings_store import change_tenant_settings
from services.metrics.adapters.rollups import rebuild_rollups
from services.metrics.handlers import drain_deferred, drain_tenant, rebuild_tenant_rollups

from .metrics_support import apply, attributed, create_tenant, deferred_versions, new_deps, rollup_rows

KINDS = (ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING)


def _events(tenant_id: str, first: int, count: int, seed: int) -> list[ActivityAttributedV1]:
    """Activities around month and quarter ends, at hours that fall on another day in Los Angeles."""
    rng = random.Random(seed)
    start = datetime(2026, 8, 25, tzinfo=UTC)
    return [
        attributed(
            tenant_id=tenant_id,
            activity=first + n,
            kind=rng.choice(KINDS),
            occurred_at=start + timedelta(days=rng.randrange(0, 120), hours=rng.choice((1, 6, 12, 23))),
            duration_seconds=rng.choice((0, 30, 90)),
            rep_id=rng.choice(("rep-1", "rep-2")),
            team_id=rng.choice(("team-1", None)),
            deal_id=rng.choice(("deal-1", "deal-2", None)),
        )
        for n in range(count)
    ]


async def test_a_fiscal_year_and_time_zone_change_equals_a_fresh_load_row_by_row(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine, "acme", timezone="UTC", fiscal_year_start_month=1)
    deps = new_deps(db_engine)
    before, during, after = (
        _events("acme", 1, 150, 1),
        _events("acme", 200, 40, 2),
        _events("acme", 300, 40, 3),
    )
    await apply(db_engine, before, deps)

    async with db_engine.begin() as conn:
        change = await change_tenant_settings(
            conn,
            "acme",
            "spm_admin_test",
            patch={"time_zone": "America/Los_Angeles", "fiscal_year_start_month": 11},
        )
    assert change is not None
    jobs = {job.kind: job.job_id for job in change.jobs}
    # The time zone also decides the day a rep's team is read on: a re-attribution preview too.
    assert sorted(jobs) == [REATTRIBUTE, REBUILD_ROLLUPS]
    job_id = jobs[REBUILD_ROLLUPS]
    # Batches between the change and the rebuild land in the calendar the rollups are built in.
    await apply(db_engine, during, deps)

    async def handle(job: Job) -> dict[str, Any]:
        return await rebuild_tenant_rollups(deps, job)

    assert await JobWorker(db_engine, REBUILD_ROLLUPS, handle).run_once()
    async with db_engine.connect() as conn:
        job = await get_job(conn, "acme", job_id)
    assert job is not None
    assert (job.state, job.error, job.done, job.total, job.settings_version) == ("done", None, 6, 6, 1)
    assert job.result is not None
    assert (job.result["time_zone"], job.result["fiscal_year_start_month"]) == ("America/Los_Angeles", 11)
    await apply(db_engine, after, deps)

    await create_tenant(db_engine, "fresh", timezone="America/Los_Angeles", fiscal_year_start_month=11)
    fresh = [e.model_copy(update={"tenant_id": "fresh"}) for e in (*before, *during, *after)]
    await apply(db_engine, fresh, new_deps(db_engine))

    rebuilt, expected = await rollup_rows(db_engine, "acme"), await rollup_rows(db_engine, "fresh")
    assert len(expected) > 300
    assert sorted(rebuilt.items()) == sorted(expected.items())
    quarters = {start for (level, _, grain, start) in rebuilt if grain == "quarter"}
    # Fiscal quarters start in November, February, May and August: no 1 Oct / 1 Nov overlap left.
    assert quarters == {date(2026, 8, 1), date(2026, 11, 1)}


async def test_a_batch_arriving_during_a_rebuild_sets_its_tenant_aside_then_the_drain_uses_the_new_calendar(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine, "acme", timezone="UTC", fiscal_year_start_month=1)
    await create_tenant(db_engine, "other", timezone="UTC", fiscal_year_start_month=1)
    first, second = _events("acme", 1, 60, 4), _events("acme", 100, 30, 5)
    others = _events("other", 1, 30, 6)
    deps = new_deps(db_engine)
    await apply(db_engine, first, deps)
    before = await rollup_rows(db_engine, "acme")

    async def no_progress(done: int, total: int) -> None:
        return None

    async with db_engine.connect() as rebuilding:
        transaction = await rebuilding.begin()
        await rebuild_rollups(rebuilding, "acme", "America/Los_Angeles", 11, no_progress)
        # The batch returns while the rebuild holds acme's rollups: the other tenant is counted,
        # acme's versions are set aside instead of adding to half-rebuilt rollups.
        await asyncio.wait_for(apply(db_engine, [*second, *others], deps), 30)
        assert _rep_days(await rollup_rows(db_engine, "other")) == 30
        assert await rollup_rows(db_engine, "acme") == before
        assert await deferred_versions(db_engine) == {"acme": 30}
        # The drain waits for the rebuild no longer than it is told to, and takes nothing.
        assert await drain_deferred(deps, "acme", lock_wait_ms=50) is None
        await transaction.commit()
    assert await drain_tenant(deps, "acme") == 30
    assert await deferred_versions(db_engine) == {}

    assert sorted((await rollup_rows(db_engine, "acme")).items()) == sorted(
        (await _fresh_rows(db_engine, "fresh", [*first, *second], "America/Los_Angeles", 11)).items()
    )


async def _fresh_rows(
    engine: AsyncEngine, tenant_id: str, events: list[ActivityAttributedV1], zone: str, fiscal_start: int
) -> dict[Any, dict[str, float]]:
    """The rollups of the same activities loaded afresh under a calendar, by a tenant of their own."""
    await create_tenant(engine, tenant_id, timezone=zone, fiscal_year_start_month=fiscal_start)
    await apply(engine, [e.model_copy(update={"tenant_id": tenant_id}) for e in events])
    return await rollup_rows(engine, tenant_id)


def _rep_days(rows: dict[Any, dict[str, float]]) -> float:
    """Activities counted in the rep, day rollups."""
    return sum(
        row.get("activities", 0)
        for (level, _, grain, _), row in rows.items()
        if (level, grain) == ("rep", "day")
    )
