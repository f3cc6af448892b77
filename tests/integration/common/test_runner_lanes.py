"""Lanes (``ConsumerRunner(lanes=...)``) through the real broker: the partitions of one batch are
handled concurrently, each part alone and in its order; a failing part commits nothing of its
partition while the part beside it is committed, and a restart reads each message exactly once
more or never; a rebalance in the middle of a batch waits for every part."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.kafka.runner import ConsumedMessage, ConsumerRunner, Lanes, Rejected, RetryDeadlineExceeded
from libs.common.settings import ConsumerSettings, KafkaSettings
from libs.common.testing.stack import fast_consumer
from libs.common.topics import ACTIVITY_INGESTED
from tests.integration.polling import eventually

from .test_runner_restart import PARTITIONS, committed_offsets, produce


class LaneRecorder:
    """Records each call's (partition, offset, external id); a call waits (up to ``meet``
    seconds) for a second one to be in flight, so parts of one batch are seen overlapping.
    Messages of ``failing`` partitions raise a transient error."""

    def __init__(self, target: int, failing: frozenset[int] = frozenset(), meet: float = 2.0) -> None:
        self.calls: list[list[tuple[int, int, str]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.failing = failing
        self.meet = meet
        self.target = target
        self.reached = asyncio.Event()
        #: Set once two calls were in the handler together.
        self.overlapped = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    @property
    def handled(self) -> list[str]:
        return [external_id for call in self.calls for _, _, external_id in call]

    async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.in_flight >= 2:
                self.overlapped.set()
            if self.meet:
                # A batch of one partition: no second part comes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.overlapped.wait(), self.meet)
            await self.release.wait()
            if {m.partition for m in messages} & self.failing:
                raise ConnectionRefusedError(111, "database down")
            call = []
            for m in messages:
                payload: ActivityIngestedV1 = m.payload
                call.append((m.partition, m.offset, payload.external_id))
            self.calls.append(call)
            if len(self.handled) >= self.target:
                self.reached.set()
            return []
        finally:
            self.in_flight -= 1


def lanes_runner(
    group: str, settings: KafkaSettings, producer: AIOKafkaProducer, handler: LaneRecorder, **policy: Any
) -> ConsumerRunner:
    consumer: ConsumerSettings = fast_consumer().model_copy(update={"commit_interval_ms": 600_000, **policy})
    return ConsumerRunner(
        service="tests",
        group_id=group,
        topics=[ACTIVITY_INGESTED],
        handler=handler,
        kafka=settings,
        policy=consumer,
        producer=producer,
        lanes=Lanes(frozenset({ACTIVITY_INGESTED}), 2, min_part=1),
    )


async def until(event: asyncio.Event, *tasks: asyncio.Task[None]) -> None:
    waiting = asyncio.ensure_future(event.wait())
    await asyncio.wait({waiting, *tasks}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    for task in tasks:
        if task.done():
            await task
    assert event.is_set()


async def test_two_partitions_are_handled_at_once_each_part_alone_in_its_order_and_committed(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ids = [f"a-{i}" for i in range(400)]
    assert await produce(kafka_settings, producer, ids) == {0: 200, 1: 200}
    handler = LaneRecorder(target=len(ids))
    runner = lanes_runner(group, kafka_settings, producer, handler)
    task = asyncio.create_task(runner.run())
    await until(handler.reached, task)
    runner.stop()
    await task
    # Two parts of one batch were in the handler together.
    assert handler.most_in_flight == 2
    # Each call held one partition; each partition was handled once, in offset order.
    assert all(len({p for p, _, _ in call}) == 1 for call in handler.calls)
    assert sorted(Counter(handler.handled).values()) == [1] * len(ids)
    for partition in range(PARTITIONS):
        offsets = [o for call in handler.calls for p, o, _ in call if p == partition]
        assert offsets == list(range(200))
    assert await committed_offsets(kafka_settings, group) == {0: 200, 1: 200}


async def test_a_failing_part_commits_nothing_of_its_partition_and_a_restart_loses_and_repeats_nothing(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ids = [f"b-{i}" for i in range(40)]
    assert await produce(kafka_settings, producer, ids) == {0: 20, 1: 20}
    # Partition 0's database is down past the retry deadline; partition 1's parts succeed.
    broken = LaneRecorder(target=len(ids), failing=frozenset({0}))
    runner = lanes_runner(group, kafka_settings, producer, broken, retry_deadline_ms=400)
    with pytest.raises(RetryDeadlineExceeded):
        await asyncio.wait_for(runner.run(), 60)
    first = broken.handled
    assert first
    assert all(int(i.split("-")[1]) % PARTITIONS == 1 for i in first)
    # What partition 1 handled is committed (the failure committed it); nothing of partition 0.
    assert await committed_offsets(kafka_settings, group) == {0: None, 1: len(first)}

    healthy = LaneRecorder(target=len(ids) - len(first))
    runner = lanes_runner(group, kafka_settings, producer, healthy)
    task = asyncio.create_task(runner.run())
    await until(healthy.reached, task)
    runner.stop()
    await task
    # Every message handled exactly once over the two runs: none lost, none repeated.
    assert sorted(first + healthy.handled) == sorted(ids)
    assert await committed_offsets(kafka_settings, group) == {0: 20, 1: 20}


async def test_a_rebalance_while_two_parts_are_in_flight_waits_for_both_and_hands_over_exactly(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ids = [f"c-{i}" for i in range(200)]
    await produce(kafka_settings, producer, ids)
    first = LaneRecorder(target=1, meet=10.0)
    first.release.clear()  # the first batch's parts stay in the handler until released
    runner = lanes_runner(group, kafka_settings, producer, first)
    task = asyncio.create_task(runner.run())

    await asyncio.wait_for(first.overlapped.wait(), 60)
    # A second member joins the group now: the revocation waits for both parts in hand.
    second = LaneRecorder(target=1, meet=0)
    joiner = lanes_runner(group, kafka_settings, producer, second)
    joining = asyncio.create_task(joiner.run())
    await asyncio.sleep(1.0)
    assert second.handled == []  # nothing handed over while the parts are in flight
    first.release.set()

    async def assigned() -> int:
        return 0 if joiner._consumer is None else len(joiner._consumer.assignment())

    await eventually(assigned, lambda n: n > 0, 60, "the joining member's assignment")
    more = [f"d-{i}" for i in range(100)]
    await produce(kafka_settings, producer, more)

    async def handled() -> int:
        return len(set(first.handled) | set(second.handled))

    await eventually(handled, lambda n: n == len(ids) + len(more), 60, "every message handled")
    runner.stop()
    joiner.stop()
    await asyncio.gather(task, joining)
    # Each message once across the two members: the revocation committed the parts in hand.
    assert sorted(first.handled + second.handled) == sorted(ids + more)
    assert second.handled, "the joining member took a partition over"
    assert await committed_offsets(kafka_settings, group) == {0: 150, 1: 150}
