"""Settings jobs run by attribution: re-attribute a slice of history after a policy change, and
re-credit the history of the reps and addresses a change of the tenant's rep mapping names.

``dry_run`` counts what would move and writes nothing; the real run then does exactly that
(``reattribute`` is the versioned path ``spm reattribute`` uses: new versions only).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import Job, JobLost, report_progress, save_checkpoint
from services.attribution.adapters import repository as repo
from services.attribution.domain.rematch import merged_windows, windows_from_parameters
from services.attribution.reattribution import (
    EVERY,
    ReattributionReport,
    reattribute,
    reattribute_ids,
    recredit_people,
)

log = logging.getLogger(__name__)


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
        writes.append(asyncio.create_task(report_progress(engine, job, done, total)))

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
        writes.append(asyncio.create_task(report_progress(engine, job, done, total)))

    report = await recredit_people(
        engine, producer, topic_prefix, job.tenant_id, job.parameters["names"], on_progress=progress
    )
    await asyncio.gather(*writes)
    return report_json(report)


#: Activities a ``rematch`` job re-decides per transaction (its checkpoint moves on at each commit).
REMATCH_BATCH = 500


async def run_rematch_job(
    engine: AsyncEngine, producer: AIOKafkaProducer, topic_prefix: str, job: Job
) -> dict[str, Any]:
    """Run a ``rematch`` job the consumer queued when a batch of deal changes reached more than
    ``ATTRIBUTION_REMATCH_LIMIT`` activities: every automatic attribution of its windows (merged,
    ``merged_windows``) is re-decided in batches through the consumer's path (new versions only
    where the decision changes, parked replies of moved threads followed; overrides and activities
    deleted at their source are left out). After each committed batch its checkpoint (the last
    (occurred_at, activity_id) decided) is saved, so a retry after a failure (``JobWorker.retries``)
    resumes past it; progress counts the earlier attempts' activities too."""
    windows = merged_windows(windows_from_parameters(job.parameters["windows"]))
    checkpoint = job.checkpoint or {}
    resumed = int(checkpoint.get("done", 0))
    after = (
        (datetime.fromisoformat(checkpoint["after"][0]), uuid.UUID(checkpoint["after"][1]))
        if checkpoint.get("after")
        else None
    )
    async with engine.connect() as conn:
        chosen = await repo.windowed_activities(conn, job.tenant_id, windows, EVERY, after=after)
    writes: list[asyncio.Task[None]] = []

    async def write(done: int, total: int, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:  # in order: a later checkpoint never lands before an earlier one
            try:
                await previous
            except JobLost:
                raise  # every later write stops the run too
            except Exception:  # a blip: logged once, the later writes still land
                log.warning("rematch job %s: a progress write failed", job.job_id, exc_info=True)
        await report_progress(engine, job, resumed + done, resumed + total)
        if done:
            activity_id, occurred_at = chosen[done - 1]
            mark = {"after": [occurred_at.isoformat(), str(activity_id)], "done": resumed + done}
            await save_checkpoint(engine, job, mark)

    def progress(done: int, total: int) -> None:
        last = writes[-1] if writes else None
        if (
            last is not None
            and last.done()
            and not last.cancelled()
            and isinstance(last.exception(), JobLost)
        ):
            raise JobLost(f"rematch job {job.job_id} was claimed again: its next batches are the new run's")
        writes.append(asyncio.create_task(write(done, total, last)))

    try:
        report = await reattribute_ids(
            engine,
            producer,
            topic_prefix,
            job.tenant_id,
            [activity_id for activity_id, _ in chosen],
            dry_run=False,
            batch_size=REMATCH_BATCH,
            on_progress=progress,
        )
    finally:
        await asyncio.gather(*writes, return_exceptions=True)
    return {**report_json(report), "resumed_after": resumed}
