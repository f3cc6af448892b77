"""Lifespan helper for consumer services: producer, runner task, drain on shutdown, fatal on failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.engine import database_reachable, make_engine
from libs.common.health import health_router
from libs.common.kafka.clients import broker_reachable, make_producer
from libs.common.kafka.runner import BatchHandler, ConsumerRunner, Lanes
from libs.common.settings import CommonSettings, ConsumerSettings
from libs.common.topics import Topic
from libs.common.web import SECURITY_HEADERS, HeadersMiddleware

log = logging.getLogger(__name__)


async def start_producer_with_retry(
    producer: AIOKafkaProducer, attempts: int = 60, delay: float = 1.0
) -> None:
    """The broker may come up after us (or be restarting): keep trying, then give up loudly."""
    for attempt in range(attempts):
        try:
            await producer.start()
            return
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            log.warning("producer start failed, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(delay)


def consumer_stuck(runner: ConsumerRunner, policy: ConsumerSettings) -> bool:
    """True while the runner has retried a transient failure past ``not_ready_after_retrying_ms``."""
    return runner.retrying_for() * 1000 >= policy.not_ready_after_retrying_ms


@asynccontextmanager
async def running_consumer(app: FastAPI, runner: ConsumerRunner) -> AsyncIterator[None]:
    """Run ``runner`` for the app's lifetime; a crash sets ``app.state.fatal`` so the process exits non-zero."""

    async def supervise() -> None:
        for attempt in range(60):
            try:
                await runner.run()
                return
            except Exception as exc:
                # Only a failure to join the group before any work is worth a retry here.
                if runner.started.is_set() or attempt == 59:
                    log.exception("consumer failed", extra={"error": repr(exc)})
                    fatal = getattr(app.state, "fatal", None)
                    if fatal is not None:
                        fatal.set()
                    raise
                log.warning("consumer could not start, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)

    task = asyncio.create_task(supervise(), name=f"{runner.service}-consumer")
    app.state.consumer_task = task
    try:
        yield
    finally:
        runner.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=20)
        except TimeoutError:
            task.cancel()
        except Exception:
            log.debug("consumer ended with an error during shutdown")


Wiring = Callable[[FastAPI, AsyncEngine, AIOKafkaProducer], AbstractAsyncContextManager[BatchHandler]]


def consumer_app(
    *,
    service: str,
    title: str,
    settings: CommonSettings,
    consumer: ConsumerSettings,
    group_id: str,
    topics: Sequence[Topic],
    wire: Wiring,
    lanes: Lanes | None = None,
) -> FastAPI:
    """The process of a consuming service: engine, producer, runner and health routes.

    ``wire`` receives the app, engine and producer and yields the batch handler; anything it
    starts (a refresher, say) it stops when its context exits, after the consumer drained.
    Shutdown order: the consumer drains and commits, then ``wire`` exits, then the producer
    and the engine close. ``lanes``: partitions the runner may handle concurrently (``Lanes``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database, service)
        producer = make_producer(settings.kafka, service)
        await start_producer_with_retry(producer)
        app.state.engine = engine
        try:
            async with wire(app, engine, producer) as handler:
                runner = ConsumerRunner(
                    service=service,
                    group_id=group_id,
                    topics=topics,
                    handler=handler,
                    kafka=settings.kafka,
                    policy=consumer,
                    producer=producer,
                    lanes=lanes,
                )
                app.state.runner = runner
                async with running_consumer(app, runner):
                    yield
        finally:
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    # Health and metrics answers too: nosniff on every answer of every service.
    app.add_middleware(HeadersMiddleware, headers=SECURITY_HEADERS)

    async def _kafka() -> bool:
        return await broker_reachable(settings.kafka)

    async def _db() -> bool:
        return await database_reachable(app.state.engine)

    async def _consumer() -> bool:
        runner: ConsumerRunner | None = getattr(app.state, "runner", None)
        return runner is None or not consumer_stuck(runner, consumer)

    app.include_router(health_router(service, {"kafka": _kafka, "database": _db, "consumer": _consumer}))
    return app
