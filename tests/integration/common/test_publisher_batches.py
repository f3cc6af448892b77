"""A large publish goes out as record batches: every message once, in its key's partition, in order."""

from __future__ import annotations

import socket
import time
import uuid

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2

from libs.common.contracts.envelope import Envelope
from libs.common.kafka.clients import connection_options
from libs.common.kafka.publisher import BATCHED_FROM, KafkaPublisher, OutgoingMessage
from libs.common.settings import KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED


def _message(topic: str, n: int, size: int) -> OutgoingMessage:
    key = f"key-{n % 37}"  # repeated keys: their messages must keep their order
    return OutgoingMessage(
        topic=topic,
        key=key.encode(),
        value=f"{n:06d}".encode() + b"x" * size,
        envelope=Envelope(id=f"m-{n}", source="/tests", type="test", subject=key, tenant="acme"),
    )


async def _read(
    kafka: KafkaSettings, topics: list[str], expected: int
) -> list[tuple[str, int, bytes, bytes, str]]:
    consumer = AIOKafkaConsumer(
        *topics,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **connection_options(kafka),
    )
    await consumer.start()
    out: list[tuple[str, int, bytes, bytes, str]] = []
    try:
        deadline = time.monotonic() + 60
        while len(out) < expected + 1 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1_000)
            if not batches and len(out) >= expected:
                break  # nothing more came: anything beyond ``expected`` would be a double publish
            for records in batches.values():
                out += [
                    (r.topic, r.partition, r.key or b"", r.value or b"", dict(r.headers)["ce_id"].decode())
                    for r in records
                ]
    finally:
        await consumer.stop()
    return out


async def test_a_large_publish_lands_every_message_once_in_its_keys_partition_in_order(
    kafka_settings: KafkaSettings,
) -> None:
    topics = [
        ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix),
        CRM_ENTITY_CHANGED.physical(kafka_settings.topic_prefix),
    ]
    # Small producer batches, so that batches fill up and one message is bigger than a batch.
    settings = kafka_settings.model_copy(update={"max_batch_bytes": 16_384})
    messages = [_message(topics[n % 2], n, 600) for n in range(BATCHED_FROM * 4)]
    messages.insert(100, _message(topics[0], 9_999, 40_000))
    publisher = KafkaPublisher(settings, 30, "tests")
    try:
        await publisher.publish(messages)
    finally:
        await publisher.close()

    received = await _read(kafka_settings, topics, len(messages))

    assert sorted(ce_id for *_, ce_id in received) == sorted(m.envelope.id for m in messages)
    for topic, partition, key, _, _ in received:
        # The partition aiokafka's send would have chosen: murmur2 of the key, over 2 partitions.
        assert partition == (murmur2(key) & 0x7FFFFFFF) % 2, (topic, key)
    for topic in topics:
        for key in {m.key for m in messages if m.topic == topic}:
            sent = [m.value for m in messages if m.topic == topic and m.key == key]
            assert [v for t, _, k, v, _ in received if t == topic and k == key] == sent


async def test_warm_up_starts_the_producer_and_reads_the_topics_ahead_of_the_first_publish(
    kafka_settings: KafkaSettings,
) -> None:
    topics = [t.physical(kafka_settings.topic_prefix) for t in (ACTIVITY_INGESTED, CRM_ENTITY_CHANGED)]
    publisher = KafkaPublisher(kafka_settings, 10.0, "tests")
    try:
        assert publisher.partitions_known == {}
        await publisher.warm_up(topics)
        known = publisher.partitions_known
        assert {topic: known.get(topic) for topic in topics} == dict.fromkeys(
            topics, kafka_settings.partitions
        )
    finally:
        await publisher.close()


async def test_warm_up_against_a_broker_that_is_down_gives_up_quietly(kafka_settings: KafkaSettings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = kafka_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{closed_port}"})
    publisher = KafkaPublisher(down, 1.0, "tests")
    started = time.monotonic()
    await publisher.warm_up([ACTIVITY_INGESTED.physical(down.topic_prefix)], timeout_seconds=1.0)
    assert time.monotonic() - started < 5.0
    assert publisher.partitions_known == {}
    await publisher.close()
