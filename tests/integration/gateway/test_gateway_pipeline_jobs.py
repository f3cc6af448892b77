"""``up_to_date`` waits for the settings jobs that rewrite a tenant's figures (and only for those)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import (
    REATTRIBUTE,
    REBUILD_ROLLUPS,
    REMATCH,
    claim_job,
    finish_job,
    queue_job,
    retry_job,
)
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY

from .gateway_support import Keys, bearer


async def _status(gateway: httpx.AsyncClient, key: str) -> tuple[bool, int]:
    answer = await gateway.get("/v1/pipeline/status", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return answer.json()["up_to_date"], answer.json()["settings_jobs_pending"]


async def test_a_rollup_rebuild_or_a_real_reattribution_holds_up_to_date(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        created = await create_tenant(conn, "initech", TEST_SECRET_KEY)
    read = created["api_keys"]["read"]  # type: ignore[index]
    assert await _status(gateway, read) == (True, 0)
    async with db_engine.begin() as conn:
        # A dry run only counts: it changes nothing a sync job reads.
        await queue_job(
            conn, "initech", REATTRIBUTE, "test", parameters={"since": "2026-10-01", "dry_run": True}
        )
    assert await _status(gateway, read) == (True, 0)

    async with db_engine.begin() as conn:
        await queue_job(conn, "initech", REBUILD_ROLLUPS, "test", settings_version=2)
        await queue_job(
            conn, "initech", REATTRIBUTE, "test", parameters={"since": "2026-10-01", "dry_run": False}
        )
    assert await _status(gateway, read) == (False, 2)
    # Another tenant's jobs are its own.
    assert (await _status(gateway, keys.read))[1] == 0

    rebuild = await claim_job(db_engine, REBUILD_ROLLUPS, timedelta(minutes=5))
    assert rebuild is not None
    assert await _status(gateway, read) == (False, 2)  # running holds it too
    await finish_job(db_engine, rebuild, result={"rollup_rows": 0})
    assert await _status(gateway, read) == (False, 1)
    for _ in range(2):  # the dry run, then the real run (oldest first)
        job = await claim_job(db_engine, REATTRIBUTE, timedelta(minutes=5))
        assert job is not None
        await finish_job(db_engine, job, error="stopped by the test")
    assert await _status(gateway, read) == (True, 0)


async def test_a_rematch_job_holds_up_to_date_and_one_failed_after_its_retries_is_reported(
    gateway: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    """A ``rematch`` job (the rest of a deal change's window) holds ``up_to_date`` while queued,
    waiting for a retry or running; failed for good, it no longer does, and is counted in
    ``rematch_jobs_failed`` (part of a window may be undecided) for the 14 days it is kept."""
    async with db_engine.begin() as conn:
        created = await create_tenant(conn, "initech", TEST_SECRET_KEY)
        await queue_job(conn, "initech", REMATCH, "attribution", parameters={"windows": []})
    read = created["api_keys"]["read"]  # type: ignore[index]

    async def status() -> tuple[bool, int, int]:
        answer = await gateway.get("/v1/pipeline/status", headers=bearer(read))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body["up_to_date"], body["settings_jobs_pending"], body["rematch_jobs_failed"]

    assert await status() == (False, 1, 0)
    job = await claim_job(db_engine, REMATCH, timedelta(minutes=5))
    assert job is not None
    await retry_job(db_engine, job, "TimeoutError: test", timedelta(minutes=5))
    assert await status() == (False, 1, 0)  # waiting for its retry
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings_jobs SET run_after = now() WHERE job_id = :id"), {"id": job.job_id}
        )
    job = await claim_job(db_engine, REMATCH, timedelta(minutes=5))
    assert job is not None
    await finish_job(db_engine, job, error="TimeoutError: test")
    assert await status() == (True, 0, 1)
    # Counted while kept (14 days, docs/api.md), whether or not another job purges it.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings_jobs SET finished_at = now() - interval '13 days 23 hours' WHERE job_id = :id"
            ),
            {"id": job.job_id},
        )
    assert await status() == (True, 0, 1)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings_jobs SET finished_at = now() - interval '14 days 1 hour' WHERE job_id = :id"
            ),
            {"id": job.job_id},
        )
    assert await status() == (True, 0, 0)
