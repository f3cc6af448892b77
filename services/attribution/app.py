"""The attribution process: a consumer plus health, readiness and metrics routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.tenant_settings import SettingsChangedV1
from libs.common.erasures import ErasureListCache, erasure_key
from libs.common.jobs import REATTRIBUTE, RECREDIT_REPS, REMATCH, Job, JobWorker
from libs.common.kafka.runner import BatchHandler, ConsumedMessage, Lanes, Rejected
from libs.common.kafka.service import consumer_app
from libs.common.kafka.settings_events import SettingsChangeListener
from libs.common.tenant_settings_store import TenantSettingsCache
from services.attribution.consumer import CONSUMES, IN_LANES
from services.attribution.erasure import ErasureScreen, ErasureWorker
from services.attribution.handlers import AttributionDeps, handle_batch
from services.attribution.held_sweep import HeldSweep
from services.attribution.jobs import run_reattribution_job, run_recredit_job, run_rematch_job
from services.attribution.settings import AttributionSettings

SERVICE = "attribution"


def create_app(settings: AttributionSettings | None = None) -> FastAPI:
    settings = settings or AttributionSettings()

    @asynccontextmanager
    async def wire(
        app: FastAPI, engine: AsyncEngine, producer: AIOKafkaProducer
    ) -> AsyncIterator[BatchHandler]:
        secret = settings.runtime.secret_key.get_secret_value()
        tenants = TenantSettingsCache(engine, settings.attribution.tenant_cache_seconds)
        erasures = ErasureListCache(engine, secret, settings.attribution.erasure_cache_seconds)
        screen = ErasureScreen(erasures)
        deps = AttributionDeps(
            engine,
            producer,
            settings.kafka.topic_prefix,
            settings.attribution.rematch_limit,
            tenants,
            screen,
        )
        worker = ErasureWorker(
            engine,
            producer,
            settings.kafka.topic_prefix,
            erasure_key(secret),
            settings.attribution.erasure_poll_seconds,
        )

        async def handler(messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
            return await handle_batch(messages, deps)

        async def forget(event: SettingsChangedV1) -> None:
            tenants.invalidate(event.tenant_id)

        # A settings job exists because the tenant's settings changed: this process's consumer
        # reads them afresh from now on, whether or not its listener has seen the change yet
        # (activities decided after the job must not be decided by the settings it replaced).
        async def reattribution(job: Job) -> dict[str, Any]:
            tenants.invalidate(job.tenant_id)
            return await run_reattribution_job(engine, producer, settings.kafka.topic_prefix, job)

        async def recredit(job: Job) -> dict[str, Any]:
            tenants.invalidate(job.tenant_id)
            return await run_recredit_job(engine, producer, settings.kafka.topic_prefix, job)

        listener = SettingsChangeListener(settings.kafka, forget)
        listener.start()
        interval = settings.attribution.jobs_interval_seconds
        jobs = JobWorker(engine, REATTRIBUTE, reattribution, interval)
        jobs.start()
        recredits = JobWorker(engine, RECREDIT_REPS, recredit, interval)
        recredits.start()

        options = settings.attribution

        async def rematch(job: Job) -> dict[str, Any]:
            return await run_rematch_job(engine, producer, settings.kafka.topic_prefix, job)

        # Queued by the system, not by someone who follows it: retried, resuming from its checkpoint.
        rematches = JobWorker(
            engine,
            REMATCH,
            rematch,
            interval,
            retries=options.rematch_retries,
            retry_after=timedelta(seconds=options.rematch_retry_seconds),
        )
        rematches.start()
        erasing = asyncio.create_task(worker.run(), name=f"{SERVICE}-erasures")
        sweep = HeldSweep(
            engine,
            producer,
            settings.kafka.topic_prefix,
            tenants,
            grace=timedelta(minutes=options.held_grace_minutes),
            interval_seconds=options.held_sweep_interval_seconds,
            batch_size=options.held_sweep_batch,
            quarantine=timedelta(seconds=options.held_sweep_quarantine_seconds),
            erasures=screen,
        )
        app.state.held_sweep = sweep
        sweeping = (
            asyncio.create_task(sweep.run(), name=f"{SERVICE}-held-sweep")
            if options.held_sweep_interval_seconds > 0
            else None
        )
        try:
            yield handler
        finally:
            worker.stop()
            sweep.stop()
            with suppress(asyncio.CancelledError):
                await erasing
            if sweeping is not None:
                with suppress(asyncio.CancelledError):
                    await sweeping
            await jobs.stop()
            await recredits.stop()
            await rematches.stop()
            await listener.stop()

    return consumer_app(
        service=SERVICE,
        title="SPM attribution",
        settings=settings,
        consumer=settings.consumer,
        group_id=settings.attribution.group_id,
        topics=CONSUMES,
        wire=wire,
        lanes=Lanes(IN_LANES, settings.attribution.partition_lanes),
    )
