"""How ``ConsumerRunner`` splits a batch into its lanes' parts (``Lanes``): by partition, each
partition whole and in its order, only for the lanes' topics, and only when the batch is large."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from libs.common.kafka.runner import ConsumerRunner, DlqLimitExceeded, Lanes, RetryDeadlineExceeded, _Raw
from libs.common.settings import ConsumerSettings, KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED

ACTIVITIES = ACTIVITY_INGESTED.physical("")
CRM = CRM_ENTITY_CHANGED.physical("")


class Consumer:
    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)

    def assignment(self) -> set[TopicPartition]:
        return self.assigned


def runner(lanes: Lanes | None) -> ConsumerRunner:
    return ConsumerRunner(
        service="tests",
        group_id="g",
        topics=[CRM_ENTITY_CHANGED, ACTIVITY_INGESTED],
        handler=cast(Any, None),
        kafka=KafkaSettings(),
        policy=ConsumerSettings(),
        producer=cast(AIOKafkaProducer, None),
        lanes=lanes,
    )


def batch(*spec: tuple[str, int, int]) -> list[_Raw]:
    """(topic, partition, messages) runs, offsets counted per partition."""
    out: list[_Raw] = []
    next_offset: dict[TopicPartition, int] = {}
    for topic, partition, count in spec:
        tp = TopicPartition(topic, partition)
        for _ in range(count):
            offset = next_offset.get(tp, 0)
            next_offset[tp] = offset + 1
            out.append(_Raw(tp, offset, None, None, []))
    return out


def shape(parts: list[list[_Raw]]) -> list[list[tuple[int, int]]]:
    return [[(raw.tp.partition, raw.offset) for raw in part] for part in parts]


FOUR = Consumer(*(TopicPartition(ACTIVITIES, p) for p in range(4)), TopicPartition(CRM, 0))


def test_a_large_batch_is_split_by_partition_each_whole_and_in_order() -> None:
    # Partitions 0 and 2 share lane 0, 1 and 3 lane 1; runs interleave as a fetch returns them.
    raws = batch(
        (ACTIVITIES, 0, 3), (ACTIVITIES, 1, 2), (ACTIVITIES, 2, 1), (ACTIVITIES, 0, 1), (ACTIVITIES, 3, 2)
    )
    parts = runner(Lanes(frozenset({ACTIVITY_INGESTED}), 2, min_part=4))._parts(cast(Any, FOUR), raws)
    assert shape(parts) == [
        [(0, 0), (0, 1), (0, 2), (2, 0), (0, 3)],
        [(1, 0), (1, 1), (3, 0), (3, 1)],
    ]


def test_a_batch_is_handled_whole_when_small_with_another_topic_or_without_lanes() -> None:
    raws = batch((ACTIVITIES, 0, 4), (ACTIVITIES, 1, 4))
    lanes = Lanes(frozenset({ACTIVITY_INGESTED}), 2, min_part=4)
    assert len(runner(lanes)._parts(cast(Any, FOUR), raws)) == 2
    # Fewer than count x min_part messages: one call costs what two halves would.
    assert len(runner(lanes)._parts(cast(Any, FOUR), raws[:-1])) == 1
    # A CRM change in hand: the batch is handled whole, alone.
    assert len(runner(lanes)._parts(cast(Any, FOUR), [*raws, *batch((CRM, 0, 1))])) == 1
    assert len(runner(None)._parts(cast(Any, FOUR), raws)) == 1
    assert (
        len(runner(Lanes(frozenset({ACTIVITY_INGESTED}), 1, min_part=1))._parts(cast(Any, FOUR), raws)) == 1
    )


async def test_a_part_stopped_by_the_dlq_limit_commits_nothing_whatever_the_other_part_raised() -> None:
    """Part 0 out of retries, part 1 over the DLQ limit: the DLQ limit wins, no offset committed
    (those of part 1's messages sent to the DLQ included)."""
    one = runner(Lanes(frozenset({ACTIVITY_INGESTED}), 2, min_part=1))
    commits: list[str] = []

    async def process(consumer: Any, part: list[_Raw]) -> None:
        if part[0].tp.partition == 0:
            raise RetryDeadlineExceeded("part 0 out of retries")
        await asyncio.sleep(0.01)
        raise DlqLimitExceeded("part 1 over the DLQ limit")

    async def commit_durable() -> None:
        commits.append("committed")

    one._process = process  # type: ignore[method-assign]
    one._commit_durable = commit_durable  # type: ignore[method-assign]
    with pytest.raises(DlqLimitExceeded):
        await one._process_in_lanes(cast(Any, FOUR), batch((ACTIVITIES, 0, 2), (ACTIVITIES, 1, 2)))
    assert commits == []
