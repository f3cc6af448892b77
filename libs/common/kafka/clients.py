"""Producer and admin factories that apply :class:`KafkaSettings` the same way everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from libs.common.kafka.partitioning import KeyHashPartitioner
from libs.common.settings import KafkaSettings
from libs.common.topics import DLQ_RETENTION_DAYS, REGISTRY

log = logging.getLogger(__name__)


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    """Options shared by producers, consumers and admin clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


#: The largest record batch a producer builds, whatever ``KAFKA_MAX_BATCH_BYTES`` says.
BATCH_BYTES_CAP = 1_048_576


def producer_batch_bytes(settings: KafkaSettings) -> int:
    """The record batch size of the producers :func:`make_producer` makes."""
    return min(settings.max_batch_bytes, BATCH_BYTES_CAP)


def make_producer(settings: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica (acks=all).

    Idempotence is a setting because the embedded broker does not support it.
    """
    return AIOKafkaProducer(
        client_id=f"{settings.client_id}-{client_id}",
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        linger_ms=settings.linger_ms,
        # aiokafka's default partitioning, computed faster (libs/common/kafka/partitioning.py).
        partitioner=KeyHashPartitioner(),
        max_batch_size=producer_batch_bytes(settings),
        max_request_size=settings.max_batch_bytes * 6,
        **connection_options(settings),
    )


def registry_topics(settings: KafkaSettings, partitions: int | None = None) -> list[NewTopic]:
    """Every registry topic and DLQ as created: a topic with its partitions and retention, its DLQ
    with one partition, kept ``DLQ_RETENTION_DAYS`` whatever its topic's retention."""
    count = partitions or settings.partitions
    topics: list[NewTopic] = []
    for topic in REGISTRY:
        topics.append(
            NewTopic(
                topic.physical(settings.topic_prefix),
                count,
                settings.replication_factor,
                topic_configs={"retention.ms": str(topic.retention_days * 86_400_000)},
            )
        )
        if topic.has_dlq:
            topics.append(
                NewTopic(
                    topic.physical_dlq(settings.topic_prefix),
                    1,
                    settings.replication_factor,
                    topic_configs={"retention.ms": str(DLQ_RETENTION_DAYS * 86_400_000)},
                )
            )
    return topics


async def create_topics(settings: KafkaSettings, partitions: int | None = None) -> list[str]:
    """Create every registry topic (and DLQ) that does not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(client_id=f"{settings.client_id}-admin", **connection_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in registry_topics(settings, partitions) if t.name not in existing]
        if not wanted:
            return []
        # Another replica may have created them meanwhile.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def broker_reachable(settings: KafkaSettings, within_seconds: float = 2.0) -> bool:
    """Readiness probe: can we fetch cluster metadata within ``within_seconds``?"""
    timeout = within_seconds
    admin = AIOKafkaAdminClient(client_id=f"{settings.client_id}-probe", **connection_options(settings))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        try:
            await asyncio.wait_for(admin.close(), timeout)
        except (TimeoutError, KafkaError, OSError):
            log.debug("admin close failed during readiness probe")


async def end_offsets(settings: KafkaSettings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition.

    ``ListOffsets(latest)`` is the answer on Kafka. The embedded Tansu answers it with the base
    offset of the last record batch + 1, short of the end whenever a producer batched several
    records, so the high watermark of a fetch of that last batch is taken as well (it is right
    on both) and the larger of the two wins. Uses its own group-less consumer: the caller's
    positions do not move.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **connection_options(settings))
    await consumer.start()
    try:
        listed = await consumer.end_offsets(partitions)
        written = [tp for tp in partitions if listed[tp] > 0]
        if not written:
            return dict(listed)
        consumer.assign(written)
        for tp in written:
            consumer.seek(tp, listed[tp] - 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while any(consumer.highwater(tp) is None for tp in written) and loop.time() < deadline:
            await consumer.getmany(*written, timeout_ms=500)
        ends = dict(listed)
        for tp in written:
            ends[tp] = max(listed[tp], consumer.highwater(tp) or 0)
        return ends
    finally:
        await consumer.stop()
