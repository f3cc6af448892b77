"""The metrics process: the rollup consumer, the read-model refresher, and health routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.tenant_settings import SettingsChangedV1
from libs.common.jobs import REBUILD_ROLLUPS, Job, JobWorker
from libs.common.kafka.runner import BatchHandler, ConsumedMessage, Rejected
from libs.common.kafka.service import consumer_app
from libs.common.kafka.settings_events import SettingsChangeListener
from libs.common.tenant_settings_store import TenantSettingsCache
from services.metrics.adapters.scoring import ScoringModelCache
from services.metrics.alerts import AlertDeliverer, DeliveryPolicy, InsightChangePublisher
from services.metrics.consumer import CONSUMES
from services.metrics.deferrals import DeferredDrainer
from services.metrics.handlers import (
    MetricsDeps,
    apply_settings_change,
    handle_batch,
    rebuild_tenant_rollups,
)
from services.metrics.refresher import ReadModelRefresher, RefreshPolicy
from services.metrics.retention import RetentionPurger
from services.metrics.settings import MetricsServiceSettings

SERVICE = "metrics"


def create_app(settings: MetricsServiceSettings | None = None) -> FastAPI:
    settings = settings or MetricsServiceSettings()

    @asynccontextmanager
    async def wire(
        app: FastAPI, engine: AsyncEngine, producer: AIOKafkaProducer
    ) -> AsyncIterator[BatchHandler]:
        # The producer serves the dead-letter topic (used by the runner) and insight-changed.
        models = ScoringModelCache()
        tenants = TenantSettingsCache(engine, settings.metrics.tenant_cache_seconds)
        deps = MetricsDeps(engine, tenants, models)
        refresher = ReadModelRefresher(
            engine,
            models,
            settings.metrics.refresh_interval_seconds,
            RefreshPolicy(
                reported_periods=settings.metrics.reported_periods,
                full_refresh_after=timedelta(seconds=settings.metrics.full_refresh_seconds),
            ),
            tenants,
        )
        app.state.refresher = refresher

        async def handler(messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
            return await handle_batch(messages, deps)

        async def apply_change(event: SettingsChangedV1) -> None:
            await apply_settings_change(deps, event)

        async def rebuild(job: Job) -> dict[str, Any]:
            return await rebuild_tenant_rollups(deps, job)

        listener = SettingsChangeListener(settings.kafka, apply_change)
        app.state.settings_listener = listener
        listener.start()
        jobs = JobWorker(engine, REBUILD_ROLLUPS, rebuild, settings.metrics.jobs_interval_seconds)
        jobs.start()
        publisher = InsightChangePublisher(
            engine, producer, settings.kafka.topic_prefix, settings.metrics.refresh_interval_seconds
        )
        app.state.insight_publisher = publisher
        options = settings.metrics
        client = httpx.AsyncClient(follow_redirects=False)
        deliverer = AlertDeliverer(
            engine,
            client,
            DeliveryPolicy(
                max_attempts=options.alert_max_attempts,
                backoff_base=timedelta(seconds=options.alert_backoff_seconds),
                backoff_cap=timedelta(seconds=options.alert_backoff_cap_seconds),
                timeout_seconds=options.alert_timeout_seconds,
            ),
            options.refresh_interval_seconds,
        )
        drainer = DeferredDrainer(deps, settings.metrics.drain_interval_seconds)
        app.state.drainer = drainer
        tasks = [
            asyncio.create_task(refresher.run(), name=f"{SERVICE}-refresher"),
            asyncio.create_task(drainer.run(), name=f"{SERVICE}-drainer"),
            asyncio.create_task(publisher.run(), name=f"{SERVICE}-insight-publisher"),
            asyncio.create_task(deliverer.run(), name=f"{SERVICE}-alert-deliverer"),
        ]
        purger = RetentionPurger(
            engine,
            settings.metrics.purge_interval_seconds,
            timedelta(days=settings.metrics.ledger_retention_days),
        )
        purging = (
            asyncio.create_task(purger.run(), name=f"{SERVICE}-retention")
            if settings.metrics.purge_interval_seconds > 0
            else None
        )
        try:
            yield handler
        finally:
            await jobs.stop()
            await listener.stop()
            refresher.stop()
            drainer.stop()
            purger.stop()
            publisher.stop()
            deliverer.stop()
            for task in [*tasks, *([purging] if purging is not None else [])]:
                with suppress(asyncio.CancelledError):
                    await task
            await client.aclose()

    return consumer_app(
        service=SERVICE,
        title="SPM metrics",
        settings=settings,
        consumer=settings.consumer,
        group_id=settings.metrics.group_id,
        topics=CONSUMES,
        wire=wire,
    )
