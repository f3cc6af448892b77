"""A consumer stopped through its drain path and restarted in the same group resumes exactly.

Stopping a :class:`ConsumerRunner` must commit everything it handled, so that the next
instance of the group starts at the end: it reads none of the old messages and exactly the
new ones. The dead-letter replay group (``spm dlq replay``) is a consumer that is started and
stopped on every call in one group as well; it must resume where the previous call stopped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.kafka.dlq import inspect_dead_letters, replay_dead_letters
from libs.common.kafka.runner import ConsumedMessage, ConsumerRunner, Rejected
from libs.common.settings import KafkaSettings
from libs.common.testing.stack import fast_consumer
from libs.common.topics import ACTIVITY_INGESTED
from tests.integration.polling import eventually

from .conftest import activity_message

PARTITIONS = 2  # what the ``kafka_settings`` fixture creates


async def produce(settings: KafkaSettings, producer: AIOKafkaProducer, ids: Sequence[str]) -> dict[int, int]:
    """Publish ``ids`` round-robin over the partitions; returns each partition's end offset.

    The end offsets come from the acknowledgements (last offset + 1): the embedded Tansu
    answers ListOffsets(latest) with the base offset of the last record batch + 1, which
    is short of the end whenever the producer batched several records.
    """
    topic = ACTIVITY_INGESTED.physical(settings.topic_prefix)
    acks = []
    for i, external_id in enumerate(ids):
        value, headers, key = activity_message(external_id)
        acks.append(await producer.send(topic, value, key=key, headers=headers, partition=i % PARTITIONS))
    ends: dict[int, int] = {}
    for ack in acks:
        metadata = await ack
        ends[metadata.partition] = max(ends.get(metadata.partition, 0), metadata.offset + 1)
    return ends


class Recorder:
    """A handler that keeps every external id it was given (rejecting ids starting with ``bad``)."""

    def __init__(self, target: int = 0) -> None:
        self.seen: list[str] = []
        self.target = target
        self.reached = asyncio.Event()

    async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        rejected = []
        for message in messages:
            payload: ActivityIngestedV1 = message.payload
            self.seen.append(payload.external_id)
            if payload.external_id.startswith("bad"):
                rejected.append(Rejected(message, "business rule: bad external id"))
        if len(self.seen) >= self.target:
            self.reached.set()
        return rejected


def runner_in(
    group: str, settings: KafkaSettings, producer: AIOKafkaProducer, handler: Recorder
) -> ConsumerRunner:
    # Commits are never due on time here: only the drain on stop can commit.
    policy = fast_consumer().model_copy(update={"commit_interval_ms": 600_000})
    return ConsumerRunner(
        service="tests",
        group_id=group,
        topics=[ACTIVITY_INGESTED],
        handler=handler,
        kafka=settings,
        policy=policy,
        producer=producer,
    )


async def wait_for_target(handler: Recorder, task: asyncio.Task[None]) -> None:
    """Until the handler saw its target count, or the runner stopped (its error is raised)."""
    reached = asyncio.ensure_future(handler.reached.wait())
    await asyncio.wait({reached, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    if task.done():
        await task
    assert handler.reached.is_set(), f"handled {len(handler.seen)} of {handler.target} within 60 s"


async def committed_offsets(settings: KafkaSettings, group: str) -> dict[int, int | None]:
    """The group's committed offset for every partition of the topic."""
    topic = ACTIVITY_INGESTED.physical(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


async def test_a_runner_restarted_in_its_group_reads_no_old_message_and_every_new_one(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    old = [f"old-{i}" for i in range(300)]
    assert await produce(kafka_settings, producer, old) == {0: 150, 1: 150}

    first = Recorder(target=len(old))
    runner = runner_in(group, kafka_settings, producer, first)
    task = asyncio.create_task(runner.run())
    await wait_for_target(first, task)
    runner.stop()
    await task
    assert sorted(first.seen) == sorted(old)
    # The drain committed offset + 1 of the last message of every partition: the end offsets.
    assert await committed_offsets(kafka_settings, group) == {0: 150, 1: 150}

    second = Recorder(target=40)
    runner = runner_in(group, kafka_settings, producer, second)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 60)
    new = [f"new-{i}" for i in range(40)]
    assert await produce(kafka_settings, producer, new) == {0: 170, 1: 170}
    # Each partition is read in offset order and every old message precedes every new one:
    # once all new messages were handled, a re-read of old ones would already show here.
    await wait_for_target(second, task)
    runner.stop()
    await task
    assert sorted(second.seen) == sorted(new)
    assert [i for i in second.seen if i.startswith("old-")] == []
    assert await committed_offsets(kafka_settings, group) == {0: 170, 1: 170}


async def test_the_replay_group_resumes_after_a_partial_replay_and_returned_letters_are_new_ones(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    # What the DLQ test saw: after replaying one of four letters, the next replay handled four,
    # not three. The fourth is not a re-read: the runner rejected the replayed message again,
    # so it came back as a new letter at the DLQ's end, with one replay.
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka_settings, producer, [f"bad-{i}" for i in range(4)])
    handler = Recorder()
    runner = runner_in(group, kafka_settings, producer, handler)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for_letters(kafka_settings, 4)
        partial = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED, max_messages=1)
        assert (partial.seen, partial.replayed) == (1, 1)
        letters = await wait_for_letters(kafka_settings, 5)
        first_replayed = letters[0]
        returned = letters[4]
        assert returned.replays == 1
        assert (returned.key, returned.value) == (first_replayed.key, first_replayed.value)
        # The replay group committed just past the letter it replayed, on its partition.
        dlq = ACTIVITY_INGESTED.physical_dlq(kafka_settings.topic_prefix)
        committed = await committed_offset(kafka_settings, f"{kafka_settings.client_id}-dlq-replay", dlq)
        assert committed == first_replayed.offset + 1
        rest = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED)
        # Three originals never replayed plus the returned letter; the first one is not among them:
        # the group resumed at offset 1 and committed the end of what it read (offsets 1 to 4).
        assert (rest.seen, rest.replayed) == (4, 4)
        assert await committed_offset(kafka_settings, f"{kafka_settings.client_id}-dlq-replay", dlq) == 5
        # Each replayed copy is rejected once more and returns with its replay count.
        letters = await wait_for_letters(kafka_settings, 9)
        assert [letter.replays for letter in letters[:5]] == [0, 0, 0, 0, 1]
        assert sorted(letter.replays for letter in letters[5:]) == [1, 1, 1, 2]
    finally:
        runner.stop()
        await task
    # The runner handled each original once and each replayed copy once: 4 + 1 + 4.
    assert len(handler.seen) == 9
    assert sorted(set(handler.seen)) == [f"bad-{i}" for i in range(4)]


async def wait_for_letters(settings: KafkaSettings, expected: int) -> list[Any]:
    async def letters_now() -> list[Any]:
        return await inspect_dead_letters(settings, ACTIVITY_INGESTED, limit=1000)

    letters: list[Any] = await eventually(
        letters_now, lambda got: len(got) >= expected, 60, f"{expected} dead letters"
    )
    assert len(letters) == expected, f"{len(letters)} letters, expected {expected}"
    return letters


async def committed_offset(settings: KafkaSettings, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        await consumer.stop()
