"""A job's claim is its run's token (the claimed ``started_at``): a worker that went silent past
``stale_after`` (a hung publish) while another replica claimed its job again changes nothing of
the new run: not its heartbeat, progress, checkpoint, state or result, and its heartbeat tells it
to stop (``JobLost``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import (
    REMATCH,
    Job,
    JobLost,
    JobWorker,
    claim_job,
    finish_job,
    get_job,
    queue_job,
    report_progress,
    requeue_job,
    retry_job,
    save_checkpoint,
)
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY

STALE = timedelta(minutes=30)


async def _stored(engine: AsyncEngine, job: Job) -> Job:
    async with engine.connect() as conn:
        stored = await get_job(conn, job.tenant_id, job.job_id)
    assert stored is not None
    return stored


async def test_a_stale_worker_changes_nothing_of_the_run_that_reclaimed_its_job(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme-claims", TEST_SECRET_KEY)
        await queue_job(conn, "acme-claims", REMATCH, "attribution", parameters={"windows": []})
    a = await claim_job(db_engine, REMATCH, STALE)
    assert a is not None
    # A is silent for 31 minutes (a hung publish): B claims the job again.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings_jobs SET started_at = now() - interval '31 minutes', "
                "heartbeat_at = now() - interval '31 minutes' WHERE job_id = :id"
            ),
            {"id": a.job_id},
        )
    a = a.model_copy(update={"started_at": (await _stored(db_engine, a)).started_at})
    b = await claim_job(db_engine, REMATCH, STALE)
    assert b is not None
    assert b.job_id == a.job_id
    assert b.started_at != a.started_at
    await report_progress(db_engine, b, 40, 100)
    await save_checkpoint(db_engine, b, {"done": 40})

    # A wakes up: its heartbeat matches no row and tells it to stop; nothing of B's run changes.
    with pytest.raises(JobLost):
        await report_progress(db_engine, a, 90, 100)
    await save_checkpoint(db_engine, a, {"done": 90})
    await retry_job(db_engine, a, "TimeoutError: hung", timedelta(minutes=5))
    await finish_job(db_engine, a, result={"moved": 1})
    # A stopped in a deploy: B's running job is not queued again (no replica C runs it alongside B).
    await requeue_job(db_engine, a)
    assert await claim_job(db_engine, REMATCH, STALE) is None
    stored = await _stored(db_engine, b)
    assert (stored.state, stored.done, stored.total, stored.checkpoint, stored.attempts, stored.error) == (
        "running",
        40,
        100,
        {"done": 40},
        0,
        None,
    )
    assert (stored.started_at, stored.result, stored.finished_at) == (b.started_at, None, None)

    # B's own updates still land.
    await finish_job(db_engine, b, result={"moved": 2})
    stored = await _stored(db_engine, b)
    assert (stored.state, stored.done, stored.result) == ("done", 100, {"moved": 2})


async def test_a_worker_whose_job_was_claimed_again_stops_its_run_without_finishing_it(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme-lost", TEST_SECRET_KEY)
        await queue_job(conn, "acme-lost", REMATCH, "attribution", parameters={"windows": []})
    batches: list[int] = []

    async def reclaimed_meanwhile(job: Job) -> dict[str, Any]:
        # Another replica claimed it again while this run hung.
        async with db_engine.begin() as conn:
            await conn.execute(
                text("UPDATE settings_jobs SET started_at = now() + interval '1 second' WHERE job_id = :id"),
                {"id": job.job_id},
            )
        for batch in range(3):
            await report_progress(db_engine, job, batch, 3)
            batches.append(batch)
        return {"moved": 3}

    worker = JobWorker(db_engine, REMATCH, reclaimed_meanwhile, retries=2)
    assert await worker.run_once()
    assert batches == []
    async with db_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT state, result, attempts, error FROM settings_jobs WHERE tenant_id = 'acme-lost'")
            )
        ).one()
    assert tuple(stored) == ("running", None, 0, None)
