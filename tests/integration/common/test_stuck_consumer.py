"""A consumer stuck on a transient failure is visible: not ready, lag and oldest age exported.

The handler fails as if PostgreSQL refused connections. While the runner retries, ``/readyz``
turns 503 past ``not_ready_after_retrying_ms`` and the per-partition gauges keep moving
(they are read from the broker beside the stuck batch); once the database is back, the batch
commits, readiness is green and the gauges drop to zero.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.kafka.runner import BatchHandler, ConsumedMessage, Rejected
from libs.common.kafka.service import consumer_app
from libs.common.settings import CommonSettings, DatabaseSettings, KafkaSettings
from libs.common.testing.stack import fast_consumer
from libs.common.topics import ACTIVITY_INGESTED
from tests.integration.polling import eventually

from .conftest import activity_message

SERVICE = "tests-stuck"


class DatabaseDown:
    """Refuses like an unreachable PostgreSQL until ``recover`` is called."""

    def __init__(self) -> None:
        self.down = True
        self.handled: list[str] = []

    async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        if self.down:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        self.handled += [m.payload.external_id for m in messages]
        return []


def gauge(name: str, partition: int) -> float | None:
    labels = {"service": SERVICE, "topic": "activity-ingested", "partition": str(partition)}
    return REGISTRY.get_sample_value(name, labels)


async def test_a_consumer_retrying_a_transient_failure_turns_not_ready_and_reports_lag_and_age(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    handler = DatabaseDown()

    @asynccontextmanager
    async def wire(
        _app: FastAPI, _engine: AsyncEngine, _producer: AIOKafkaProducer
    ) -> AsyncIterator[BatchHandler]:
        yield handler

    policy = fast_consumer().model_copy(
        update={"not_ready_after_retrying_ms": 500, "progress_interval_ms": 100, "retry_max_backoff_ms": 100}
    )
    app = consumer_app(
        service=SERVICE,
        title="stuck",
        settings=CommonSettings(kafka=kafka_settings, database=database_settings),
        consumer=policy,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=[ACTIVITY_INGESTED],
        wire=wire,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for i in range(5):
            value, headers, key = activity_message(f"stuck-{i}")
            topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client,
    ):

        async def not_ready() -> bool:
            response = await client.get("/readyz")
            return response.status_code == 503 and response.json()["checks"] == {
                "kafka": True,
                "database": True,
                "consumer": False,
            }

        await eventually(not_ready, bool, 60, "/readyz 503 with only the consumer check failing")
        await eventually(
            lambda: _async(gauge("spm_consumer_lag_messages", 0) == 5),
            bool,
            60,
            "lag 5 on partition 0 while stuck",
        )
        await eventually(
            lambda: _async((gauge("spm_consumer_oldest_unprocessed_age_seconds", 0) or 0.0) > 0),
            bool,
            60,
            "an oldest-message age while stuck",
        )
        first_age = gauge("spm_consumer_oldest_unprocessed_age_seconds", 0) or 0.0
        # The gauge is refreshed from the broker while the batch is stuck: it grows.
        await eventually(
            lambda: _async((gauge("spm_consumer_oldest_unprocessed_age_seconds", 0) or 0.0) > first_age),
            bool,
            60,
            "the oldest-message age growing while stuck",
        )
        assert (REGISTRY.get_sample_value("spm_consumer_retrying_seconds", {"service": SERVICE}) or 0) > 0
        assert handler.handled == []

        handler.down = False

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, bool, 60, "/readyz 200 after the database came back")
        await eventually(
            lambda: _async(
                gauge("spm_consumer_lag_messages", 0) == 0
                and gauge("spm_consumer_oldest_unprocessed_age_seconds", 0) == 0
            ),
            bool,
            60,
            "lag and age back to 0",
        )
        assert handler.handled == [f"stuck-{i}" for i in range(5)]
        assert REGISTRY.get_sample_value("spm_consumer_retrying_seconds", {"service": SERVICE}) == 0


async def _async(value: bool) -> bool:
    return value
