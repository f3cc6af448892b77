"""A settings job's worker across restarts and long runs: a job in progress reports a heartbeat with
its progress, so it is not claimed by a second replica while it runs longer than ``stale_after``;
a job a stopping worker (a rolling restart) interrupts is queued again at once, not left
``running`` until ``stale_after`` (30 minutes) lets another replica claim it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import REREAD_PHONES, Job, JobWorker, claim_job, get_job, queue_job, report_progress
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY

STALE = timedelta(minutes=30)


async def _queued(engine: AsyncEngine, tenant_id: str) -> Job:
    async with engine.begin() as conn:
        await create_tenant(conn, tenant_id, TEST_SECRET_KEY)
        job_id = await queue_job(conn, tenant_id, REREAD_PHONES, "test", parameters={"region": "GB"})
        job = await get_job(conn, tenant_id, job_id)
    assert job is not None
    return job


async def test_a_job_reporting_progress_is_not_claimed_again_after_stale_after(
    db_engine: AsyncEngine,
) -> None:
    job = await _queued(db_engine, "acme-beat")
    claimed = await claim_job(db_engine, REREAD_PHONES, STALE)
    assert claimed is not None
    assert claimed.job_id == job.job_id
    # It has run for 40 minutes, reporting progress all along.
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings_jobs SET started_at = now() - interval '40 minutes' WHERE job_id = :id"),
            {"id": job.job_id},
        )
        running = await get_job(conn, job.tenant_id, job.job_id)  # its claim, as it started
    assert running is not None
    await report_progress(db_engine, running, 500, None)
    assert await claim_job(db_engine, REREAD_PHONES, STALE) is None
    # Silent for longer than stale_after (its process died): claimed again.
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings_jobs SET heartbeat_at = now() - interval '31 minutes' WHERE job_id = :id"),
            {"id": job.job_id},
        )
    again = await claim_job(db_engine, REREAD_PHONES, STALE)
    assert again is not None
    assert (again.job_id, again.done) == (job.job_id, 0)


async def test_a_job_interrupted_by_a_stopping_worker_is_queued_again_and_run_by_the_next(
    db_engine: AsyncEngine,
) -> None:
    job = await _queued(db_engine, "acme-restart")
    running = asyncio.Event()

    async def never_ends(claimed: Job) -> dict[str, Any]:
        await report_progress(db_engine, claimed, 3, 10)
        running.set()
        await asyncio.Event().wait()
        return {}

    first = JobWorker(db_engine, REREAD_PHONES, never_ends, interval_seconds=0.05)
    first.start()
    await asyncio.wait_for(running.wait(), 10)
    await first.stop()
    async with db_engine.connect() as conn:
        stopped = await get_job(conn, job.tenant_id, job.job_id)
    assert stopped is not None
    assert (stopped.state, stopped.done, stopped.total, stopped.started_at) == ("queued", 0, None, None)

    async def ends(claimed: Job) -> dict[str, Any]:
        return {"region": "GB"}

    second = JobWorker(db_engine, REREAD_PHONES, ends, interval_seconds=0.05)
    assert await second.run_once()
    async with db_engine.connect() as conn:
        done = await get_job(conn, job.tenant_id, job.job_id)
    assert done is not None
    assert (done.state, done.result) == ("done", {"region": "GB"})
