"""Settings jobs are shared by every tenant (one worker per kind and replica): a tenant that queues
many (an admin script posting re-attributions in a loop) must not hold another tenant's job back
until all of its own have run. Claims go round the tenants, each tenant's jobs oldest first."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import REATTRIBUTE, claim_job, finish_job, queue_job
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY

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
        await finish_job(db_engine, job.job_id, result={})
    # initech's job runs second, not fifth; acme's run in the order they were queued.
    assert claimed == [
        ("acme", "2026-01-01"),
        ("initech", "2026-05-01"),
        ("acme", "2026-02-01"),
        ("acme", "2026-03-01"),
        ("acme", "2026-04-01"),
    ]
