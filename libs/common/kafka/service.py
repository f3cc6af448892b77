"""Lifespan helper for consumer services: producer, runner task, drain on shutdown, fatal on failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from libs.common.kafka.runner import ConsumerRunner

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
