"""Settings jobs run by attribution: re-attribute a slice of history after a policy change, and
re-credit the history of the reps and addresses a change of the tenant's rep mapping names.

``dry_run`` counts what would move and writes nothing; the real run then does exactly that
(``reattribute`` is the versioned path ``spm reattribute`` uses: new versions only).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import Job, report_progress
from services.attribution.adapters import repository as repo
from services.attribution.domain.rematch import windows_from_parameters
from services.attribution.reattribution import (
    EVERY,
    ReattributionReport,
    reattribute,
    reattribute_ids,
    recredit_people,
)


def report_json(report: ReattributionReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "examined": report.examined,
        "changed": report.changed,
        "deal_changed": report.deal_changed,
        "published": report.published,
        "transitions": [
            {"from": old, "to": new, "count": count}
            for (old, new), count in sorted(report.transitions.items(), key=lambda i: (-i[1], str(i[0])))
        ],
        "deal_moves": [
            {"from": old, "to": new, "count": count}
            for (old, new), count in sorted(report.deal_moves.items(), key=lambda i: (-i[1], str(i[0])))
        ],
    }


def _start_of(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.min, tzinfo=UTC)


async def run_reattribution_job(
    engine: AsyncEngine, producer: AIOKafkaProducer, topic_prefix: str, job: Job
) -> dict[str, Any]:
    """Run a ``reattribute`` job; its progress is the activities examined."""
    parameters = job.parameters
    until = parameters.get("until")
    dry_run = bool(parameters.get("dry_run", True))
    writes: list[asyncio.Task[None]] = []

    def progress(done: int, total: int) -> None:
        writes.append(asyncio.create_task(report_progress(engine, job.job_id, done, total)))

    report = await reattribute(
        engine,
        None if dry_run else producer,
        topic_prefix,
        job.tenant_id,
        _start_of(parameters["since"]),
        _start_of(until) if until else None,
        dry_run=dry_run,
        on_progress=progress,
    )
    await asyncio.gather(*writes)
    return report_json(report)


async def run_recredit_job(
    engine: AsyncEngine, producer: AIOKafkaProducer, topic_prefix: str, job: Job
) -> dict[str, Any]:
    """Run a ``recredit_reps`` job (the tenant's ``rep_aliases`` changed); its progress is the
    activities examined, its result what moved."""
    writes: list[asyncio.Task[None]] = []

    def progress(done: int, total: int) -> None:
        writes.append(asyncio.create_task(report_progress(engine, job.job_id, done, total)))

    report = await recredit_people(
        engine, producer, topic_prefix, job.tenant_id, job.parameters["names"], on_progress=progress
    )
    await asyncio.gather(*writes)
    return report_json(report)


async def run_rematch_job(
    engine: AsyncEngine, producer: AIOKafkaProducer, topic_prefix: str, job: Job
) -> dict[str, Any]:
    """Run a ``rematch`` job the consumer queued when a batch of deal changes reached more than
    ``ATTRIBUTION_REMATCH_LIMIT`` activities: every automatic attribution of its windows is
    re-decided, in batches (new versions only where the decision changes; overrides and
    activities deleted at their source are left out by the versioned path)."""
    writes: list[asyncio.Task[None]] = []

    def progress(done: int, total: int) -> None:
        writes.append(asyncio.create_task(report_progress(engine, job.job_id, done, total)))

    windows = windows_from_parameters(job.parameters["windows"])
    async with engine.connect() as conn:
        ids = await repo.activities_in_windows(conn, job.tenant_id, windows, EVERY)
    report = await reattribute_ids(
        engine, producer, topic_prefix, job.tenant_id, ids, dry_run=False, on_progress=progress
    )
    await asyncio.gather(*writes)
    return report_json(report)
