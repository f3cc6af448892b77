"""The metrics process: the rollup consumer, the read-model refresher, and health routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.kafka.runner import BatchHandler, ConsumedMessage, Rejected
from libs.common.kafka.service import consumer_app
from services.metrics.adapters.scoring import ScoringModelCache
from services.metrics.consumer import CONSUMES
from services.metrics.handlers import MetricsDeps, TenantSettingsCache, handle_batch
from services.metrics.refresher import ReadModelRefresher, RefreshPolicy
from services.metrics.retention import RetentionPurger
from services.metrics.settings import MetricsServiceSettings

SERVICE = "metrics"


def create_app(settings: MetricsServiceSettings | None = None) -> FastAPI:
    settings = settings or MetricsServiceSettings()

    @asynccontextmanager
    async def wire(
        app: FastAPI, engine: AsyncEngine, _producer: AIOKafkaProducer
    ) -> AsyncIterator[BatchHandler]:
        # The producer only serves the dead-letter topic (used by the runner).
        models = ScoringModelCache()
        deps = MetricsDeps(engine, TenantSettingsCache(settings.metrics.tenant_cache_seconds), models)
        refresher = ReadModelRefresher(
            engine,
            models,
            settings.metrics.refresh_interval_seconds,
            RefreshPolicy(
                reported_periods=settings.metrics.reported_periods,
                full_refresh_after=timedelta(seconds=settings.metrics.full_refresh_seconds),
            ),
        )
        app.state.refresher = refresher

        async def handler(messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
            return await handle_batch(messages, deps)

        refreshing = asyncio.create_task(refresher.run(), name=f"{SERVICE}-refresher")
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
            refresher.stop()
            purger.stop()
            with suppress(asyncio.CancelledError):
                await refreshing
                if purging is not None:
                    await purging

    return consumer_app(
        service=SERVICE,
        title="SPM metrics",
        settings=settings,
        consumer=settings.consumer,
        group_id=settings.metrics.group_id,
        topics=CONSUMES,
        wire=wire,
    )
