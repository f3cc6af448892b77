"""The metrics process: a consumer plus health, readiness and metrics routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from libs.common.db.engine import database_reachable, make_engine
from libs.common.health import health_router
from libs.common.kafka.clients import broker_reachable, make_producer
from libs.common.kafka.runner import ConsumedMessage, ConsumerRunner, Rejected
from libs.common.kafka.service import running_consumer, start_producer_with_retry
from services.metrics.adapters.scoring import ScoringModelCache
from services.metrics.consumer import CONSUMES
from services.metrics.handlers import MetricsDeps, TenantSettingsCache, handle_batch
from services.metrics.refresher import ReadModelRefresher, RefreshPolicy
from services.metrics.settings import MetricsServiceSettings

SERVICE = "metrics"


def create_app(settings: MetricsServiceSettings | None = None) -> FastAPI:
    settings = settings or MetricsServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database, SERVICE)
        # The producer only serves the dead-letter topic.
        producer = make_producer(settings.kafka, SERVICE)
        await start_producer_with_retry(producer)
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

        async def handler(messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
            return await handle_batch(messages, deps)

        runner = ConsumerRunner(
            service=SERVICE,
            group_id=settings.metrics.group_id,
            topics=CONSUMES,
            handler=handler,
            kafka=settings.kafka,
            policy=settings.consumer,
            producer=producer,
        )
        app.state.engine = engine
        app.state.runner = runner
        app.state.refresher = refresher
        refreshing = asyncio.create_task(refresher.run(), name=f"{SERVICE}-refresher")
        try:
            async with running_consumer(app, runner):
                yield
        finally:
            refresher.stop()
            with suppress(asyncio.CancelledError):
                await refreshing
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title="SPM metrics", lifespan=lifespan, docs_url=None, redoc_url=None)

    async def _kafka() -> bool:
        return await broker_reachable(settings.kafka)

    async def _db() -> bool:
        return await database_reachable(app.state.engine)

    app.include_router(health_router(SERVICE, {"kafka": _kafka, "database": _db}))
    return app
