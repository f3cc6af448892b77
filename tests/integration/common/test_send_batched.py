"""``send_batched`` puts every keyed message where ``producer.send`` would, in order, with its headers.

Attribution publishes a consumer batch's outputs as one record batch per partition; one rep's
versions must still land on the partition their key hashes to, in the order given, and a
batch that fills up must continue in the next one without losing or reordering anything.
"""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer

from libs.common.contracts.envelope import Envelope
from libs.common.kafka.clients import make_producer
from libs.common.kafka.publisher import OutgoingMessage, send_batched
from libs.common.settings import KafkaSettings
from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED


async def _read_all(
    settings: KafkaSettings, topic: str, expected: int
) -> list[tuple[int, bytes, bytes, str]]:
    """(partition, key, value, ce_id) of every record of ``topic``, per partition in offset order."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"read-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[tuple[int, bytes, bytes, str]] = []
    try:
        for _ in range(100):
            fetched = await consumer.getmany(timeout_ms=500)
            for tp, batch in fetched.items():
                for r in batch:
                    assert r.key is not None
                    assert r.value is not None
                    records.append((tp.partition, r.key, r.value, dict(r.headers)["ce_id"].decode()))
            if len(records) >= expected:
                break
    finally:
        await consumer.stop()
    return records


async def test_send_batched_lands_each_key_where_send_would_in_order(kafka_settings: KafkaSettings) -> None:
    # Batches of 2 KB hold a handful of these 300-byte messages: the "batch full" path is taken.
    small = kafka_settings.model_copy(update={"max_batch_bytes": 2048})
    producer = make_producer(small, "tests")
    await producer.start()
    batched_topic = ACTIVITY_ATTRIBUTED.physical(kafka_settings.topic_prefix)
    single_topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    keys = [f"acme:rep-{i % 7}".encode() for i in range(60)]
    values = [f"{i:04d}".encode() * 75 for i in range(60)]
    try:
        await send_batched(
            producer,
            [
                OutgoingMessage(
                    batched_topic,
                    key,
                    value,
                    Envelope(id=f"m{i}", source="/tests", type="t", subject=str(i), tenant="acme"),
                )
                for i, (key, value) in enumerate(zip(keys, values, strict=True))
            ],
        )
        acks = [
            await producer.send(single_topic, value, key=key) for key, value in zip(keys, values, strict=True)
        ]
        sent_to = {keys[i]: (await ack).partition for i, ack in enumerate(acks)}
    finally:
        await producer.stop()

    records = await _read_all(kafka_settings, batched_topic, 60)
    assert len(records) == 60
    assert {key: partition for partition, key, _, _ in records} == sent_to
    assert len(set(sent_to.values())) == 2  # both partitions used
    for key in set(keys):
        in_order = [(value, ce_id) for _, k, value, ce_id in records if k == key]
        assert in_order == [(values[i], f"m{i}") for i in range(60) if keys[i] == key]
