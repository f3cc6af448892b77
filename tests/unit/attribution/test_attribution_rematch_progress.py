"""A ``rematch`` job's progress writes (``run_rematch_job``): one failed write (a database blip)
is logged and the later ones still land, so a claim taken by another run (``JobLost``) still
stops this one at its next batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.jobs import Job, JobLost
from services.attribution import jobs as attribution_jobs
from services.attribution.adapters import repository as repo
from services.attribution.reattribution import ReattributionReport

IDS = [uuid.UUID(int=i) for i in range(1, 6)]
WINDOWS = [{"accounts": ["acc-1"], "contacts": [], "since": "2026-10-01T00:00:00+00:00", "until": None}]


class _Engine:
    @asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        yield None


async def test_a_failed_progress_write_does_not_hide_a_lost_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    batches: list[int] = []

    async def report_progress(engine: Any, job: Any, done: int, total: int) -> None:
        writes.append(done)
        if len(writes) == 1:
            raise OSError("connection reset")  # the blip
        if len(writes) == 2:
            raise JobLost("claimed again")

    async def save_checkpoint(engine: Any, job: Any, checkpoint: dict[str, Any]) -> None:
        return None

    async def windowed_activities(*args: Any, **kwargs: Any) -> list[tuple[uuid.UUID, datetime]]:
        return [(i, datetime(2026, 11, 2, tzinfo=UTC)) for i in IDS]

    async def reattribute_ids(
        *args: Any, on_progress: Callable[[int, int], None], **kwargs: Any
    ) -> ReattributionReport:
        for done in range(1, len(IDS) + 1):
            on_progress(done, len(IDS))
            batches.append(done)
            await asyncio.sleep(0.01)  # the batch's transaction; the progress write lands meanwhile
        return ReattributionReport(tenant_id="acme", dry_run=False, examined=len(IDS))

    monkeypatch.setattr(attribution_jobs, "report_progress", report_progress)
    monkeypatch.setattr(attribution_jobs, "save_checkpoint", save_checkpoint)
    monkeypatch.setattr(repo, "windowed_activities", windowed_activities)
    monkeypatch.setattr(attribution_jobs, "reattribute_ids", reattribute_ids)
    job = cast(
        Job,
        SimpleNamespace(
            job_id=uuid.uuid4(), tenant_id="acme", parameters={"windows": WINDOWS}, checkpoint=None
        ),
    )
    with pytest.raises(JobLost):
        await attribution_jobs.run_rematch_job(
            cast(AsyncEngine, _Engine()), cast(AIOKafkaProducer, None), "t.", job
        )
    # The first write failed (logged), the second found the claim lost: the third batch never ran.
    assert (writes, batches) == ([1, 2], [1, 2])
