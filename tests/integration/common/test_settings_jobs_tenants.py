"""Settings jobs are shared by every tenant (one worker per kind and replica): a tenant that queues
many (an admin script posting re-attributions in a loop) must not hold another tenant's job back
until all of its own have run. Claims go round the tenants, each tenant's jobs oldest first."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import (
    _WAITING,
    REATTRIBUTE,
    REMATCH,
    Job,
    JobWorker,
    claim_job,
    claim_tenant_job,
    finish_job,
    get_job,
    queue_job,
    save_checkpoint,
)
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from tests.integration.polling import eventually

STALE = timedelta(minutes=30)


async def _queue(engine: AsyncEngine, tenant_id: str, since: str) -> None:
    async with engine.begin() as conn:  # one transaction each: its own created_at
        await queue_job(conn, tenant_id, REATTRIBUTE, "test", parameters={"since": since, "dry_run": False})


async def test_a_tenant_flooding_the_queue_does_not_hold_back_another_tenants_job(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        for tenant in ("acme", "initech"):
            await create_tenant(conn, tenant, TEST_SECRET_KEY)
    for day in ("2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"):
        await _queue(db_engine, "acme", day)
    await _queue(db_engine, "initech", "2026-05-01")

    claimed: list[tuple[str, str]] = []
    while (job := await claim_job(db_engine, REATTRIBUTE, STALE)) is not None:
        claimed.append((job.tenant_id, job.parameters["since"]))
        await finish_job(db_engine, job, result={})
    # initech's job runs second, not fifth; acme's run in the order they were queued.
    assert claimed == [
        ("acme", "2026-01-01"),
        ("initech", "2026-05-01"),
        ("acme", "2026-02-01"),
        ("acme", "2026-03-01"),
        ("acme", "2026-04-01"),
    ]


async def test_a_retried_job_backs_off_resumes_from_its_checkpoint_and_fails_after_its_retries(
    db_engine: AsyncEngine,
) -> None:
    """A worker with ``retries`` (``rematch``) queues a failed job again, claimed no sooner than
    its backoff (doubled at each attempt), its checkpoint kept; past its retries it is ``failed``."""
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        job_id = await queue_job(conn, "acme", REMATCH, "attribution", parameters={"windows": []})
    seen: list[tuple[int, dict[str, Any] | None]] = []

    async def fail(job: Job) -> dict[str, Any]:
        seen.append((job.attempts, job.checkpoint))
        await save_checkpoint(db_engine, job, {"done": 10 * (job.attempts + 1)})
        raise TimeoutError("no acknowledgement")

    worker = JobWorker(db_engine, REMATCH, fail, retries=2, retry_after=timedelta(seconds=0.5))
    assert await worker.run_once()
    assert not await worker.run_once()  # backing off 0.5 s
    await asyncio.sleep(0.6)
    assert await worker.run_once()
    await asyncio.sleep(0.6)
    assert not await worker.run_once()  # 1 s the second time
    await asyncio.sleep(0.5)
    assert await worker.run_once()
    async with db_engine.connect() as conn:
        job = await get_job(conn, "acme", job_id)
    assert seen == [(0, None), (1, {"done": 10}), (2, {"done": 20})]
    assert job is not None
    assert (job.state, job.attempts, job.error) == ("failed", 2, "TimeoutError: no acknowledgement")


async def test_the_claim_reads_the_partial_indexes_of_queued_and_running_jobs(db_engine: AsyncEngine) -> None:
    """Both halves of a claim's "waiting" (queued, or left running by a dead process) are read
    from an index (``settings_jobs_queued``, ``settings_jobs_running``), not from every job ever run."""
    async with db_engine.connect() as conn:
        await conn.exec_driver_sql("SET enable_seqscan = off")
        explained = await conn.execute(
            text(f"EXPLAIN SELECT job_id FROM settings_jobs WHERE {_WAITING}"),
            {"kind": REMATCH, "stale": STALE},
        )
        plan = "\n".join(row[0] for row in explained)
        await conn.rollback()
    assert "settings_jobs_queued" in plan, plan
    assert "settings_jobs_running" in plan, plan


async def test_a_tenant_s_long_job_holds_one_slot_and_another_tenant_s_runs_beside_it(
    db_engine: AsyncEngine,
) -> None:
    """Acme's re-attribution of years of history runs for an hour. The worker ran one job at a
    time: Initech's preview, queued meanwhile, waited the hour. A worker runs two at once, never
    two of one tenant (Acme's second waits for its first)."""
    async with db_engine.begin() as conn:
        for tenant in ("acme", "initech"):
            await create_tenant(conn, tenant, TEST_SECRET_KEY)
    await _queue(db_engine, "acme", "2020-01-01")
    await _queue(db_engine, "acme", "2026-02-01")
    await _queue(db_engine, "initech", "2026-05-01")
    release = asyncio.Event()
    ran: list[tuple[str, str]] = []

    async def handle(job: Job) -> dict[str, Any]:
        ran.append((job.tenant_id, job.parameters["since"]))
        if job.tenant_id == "acme":
            await release.wait()
        return {}

    async def states() -> list[tuple[str, str, str]]:
        async with db_engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT tenant_id, parameters->>'since' AS since, state FROM settings_jobs ORDER BY since"
                )
            )
            return [tuple(r) for r in rows]

    worker = JobWorker(db_engine, REATTRIBUTE, handle, interval_seconds=0.05)
    worker.start()
    try:
        got = await eventually(
            states, lambda s: ("initech", "2026-05-01", "done") in s, 10, "initech's job done"
        )
        assert got == [
            ("acme", "2020-01-01", "running"),
            ("acme", "2026-02-01", "queued"),
            ("initech", "2026-05-01", "done"),
        ]
        release.set()
        await eventually(states, lambda s: all(state == "done" for _, _, state in s), 10, "acme's jobs done")
        assert ran == [("acme", "2020-01-01"), ("initech", "2026-05-01"), ("acme", "2026-02-01")]
    finally:
        release.set()
        await worker.stop()


async def test_two_replicas_claiming_at_once_never_run_two_jobs_of_one_tenant(db_engine: AsyncEngine) -> None:
    """Replica A has claimed Acme's first job, its transaction not yet committed; replica B, which
    read the tenants' turns meanwhile (A's claim not visible), skips that locked job: it must not
    claim Acme's second job beside it. Once A commits, B still claims nothing of Acme's."""
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
    await _queue(db_engine, "acme", "2026-01-01")
    await _queue(db_engine, "acme", "2026-02-01")

    async with db_engine.connect() as replica_a:
        async with replica_a.begin():
            first = await claim_tenant_job(replica_a, REATTRIBUTE, STALE, "acme")
            assert first is not None
            assert first.parameters["since"] == "2026-01-01"
            assert await claim_job(db_engine, REATTRIBUTE, STALE) is None  # replica B, meanwhile
        assert await claim_job(db_engine, REATTRIBUTE, STALE) is None  # after A committed
    await finish_job(db_engine, first, result={})
    second = await claim_job(db_engine, REATTRIBUTE, STALE)
    assert second is not None
    assert second.parameters["since"] == "2026-02-01"
