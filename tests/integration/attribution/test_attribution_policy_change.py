"""After an attribution policy change: a dry-run job counts what would move, the real run does exactly that."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import REATTRIBUTE, Job, JobWorker, get_job, queue_job
from libs.common.kafka.clients import make_producer
from libs.common.settings import KafkaSettings
from services.attribution.jobs import run_reattribution_job

from .attribution_support import TENANT
from .test_reattribution import BEFORE, _history, _versions


async def _run(db_engine: AsyncEngine, kafka_settings: KafkaSettings, dry_run: bool) -> dict[str, Any]:
    async with db_engine.begin() as conn:
        job_id = await queue_job(
            conn,
            TENANT,
            REATTRIBUTE,
            "spm_admin_test",
            parameters={"since": "2026-11-01", "until": "2026-11-06", "dry_run": dry_run},
        )
    producer = make_producer(kafka_settings, "tests")
    await producer.start()
    try:

        async def handle(job: Job) -> dict[str, Any]:
            return await run_reattribution_job(db_engine, producer, kafka_settings.topic_prefix, job)

        assert await JobWorker(db_engine, REATTRIBUTE, handle).run_once()
    finally:
        await producer.stop()
    async with db_engine.connect() as conn:
        job = await get_job(conn, TENANT, job_id)
    assert job is not None
    assert (job.state, job.error, job.done, job.total) == ("done", None, 5, 5)
    assert job.result is not None
    return job.result


async def test_the_dry_run_counts_exactly_what_the_real_run_then_moves(
    db_engine: AsyncEngine, kafka_settings: KafkaSettings
) -> None:
    ids = await _history(db_engine)
    preview = await _run(db_engine, kafka_settings, dry_run=True)
    assert await _versions(db_engine, ids) == BEFORE
    applied = await _run(db_engine, kafka_settings, dry_run=False)

    assert preview == {
        "dry_run": True,
        "examined": 5,  # a6's override (deal-1) stays as set: not re-decided
        "changed": 4,
        "deal_changed": 4,
        "published": 0,
        "transitions": [
            {"from": "attributed", "to": "account_only", "count": 3},
            {"from": "ambiguous", "to": "ambiguous", "count": 1},
        ],
        "deal_moves": [
            {"from": "deal-1", "to": None, "count": 3},
            {"from": "deal-2", "to": None, "count": 1},
        ],
    }
    assert applied == {**preview, "dry_run": False, "published": 4}
    after = await _versions(db_engine, ids)
    moved = {name for name in ids if after[name] != BEFORE[name]}
    assert len(moved) == preview["changed"]
    assert all(after[name][0] == BEFORE[name][0] + 1 for name in moved)
    # Nothing left to move: a second preview finds nothing.
    again = await _run(db_engine, kafka_settings, dry_run=True)
    assert (again["examined"], again["changed"]) == (5, 0)
