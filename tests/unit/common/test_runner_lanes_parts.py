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


async def test_a_part_stopped_by_the_dlq_limit_commits_nothing_whatever_the_other_part_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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

    monkeypatch.setattr(one, "_process", process)
    monkeypatch.setattr(one, "_commit_durable", commit_durable)
    with pytest.raises(DlqLimitExceeded):
        await one._process_in_lanes(cast(Any, FOUR), batch((ACTIVITIES, 0, 2), (ACTIVITIES, 1, 2)))
    assert commits == []


class Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class Buffered(Consumer):
    """A client holding, per partition, the messages from the first read's end (``first``) up to
    ``held``; ``seek`` (giving back what the top-up took) is recorded."""

    def __init__(self, first: dict[int, int], held: dict[int, int], partitions: int) -> None:
        super().__init__(*(TopicPartition(ACTIVITIES, p) for p in range(partitions)))
        self.next = {TopicPartition(ACTIVITIES, p): first.get(p, 0) for p in range(partitions)}
        self.end = {TopicPartition(ACTIVITIES, p): n for p, n in held.items()}
        self.seeks: list[tuple[int, int]] = []

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        out: dict[TopicPartition, list[Record]] = {}
        for tp in partitions:
            have = [Record(o) for o in range(self.next[tp], self.end.get(tp, 0))][:max_records]
            if have:
                out[tp] = have
                self.next[tp] += len(have)
                max_records -= len(have)
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.partition, offset))


async def top_up(lanes: int, first: dict[int, int], held: dict[int, int], partitions: int = 4) -> Any:
    """(part sizes, seeks) of a batch whose first read is ``first`` (partition -> messages) and
    whose client holds up to offset ``held`` per partition."""
    consumer = Buffered(first, held, partitions)
    one = runner(Lanes(frozenset({ACTIVITY_INGESTED}), lanes))
    records = {TopicPartition(ACTIVITIES, p): [Record(o) for o in range(n)] for p, n in first.items()}
    out = await one._top_up(cast(Any, consumer), cast(Any, records))
    raws = [_Raw(tp, m.offset, None, None, []) for tp, ms in out.items() for m in ms]
    return sorted(len(part) for part in one._parts(cast(Any, consumer), raws)), consumer.seeks


async def test_a_short_lane_is_topped_up_only_when_the_batch_is_split_and_never_past_the_batch_size() -> None:
    # The first read drained partition 0 (lane 0); partition 1 (lane 1) is topped up to 2,000.
    assert await top_up(2, {0: 2000}, {1: 3000}) == ([2000, 2000], [])
    # Five in hand for lane 1: not a part of its own; given back, the 1,995 handled alone.
    assert await top_up(2, {0: 1995}, {1: 5}) == ([1995], [(1, 0)])
    # More lanes than partitions: the two assigned lanes count, each part up to 2,000.
    assert await top_up(8, {0: 2000}, {1: 1000}, partitions=2) == ([1000, 2000], [])
    # Five lanes over five partitions: no part over 2,000, however many lanes.
    assert await top_up(5, {0: 2000}, {p: 2500 for p in range(1, 5)}, partitions=5) == ([2000] * 5, [])
    # Lane 0 read 300 and finds 100 more (partition 2): still short, so the batch goes whole.
    assert await top_up(2, {0: 300, 1: 1700}, {2: 100}) == ([2000], [(2, 0)])


def test_lanes_whose_parts_could_never_be_split_are_turned_off_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deployment whose batch size is below a part's minimum keeps starting: each batch whole."""
    with caplog.at_level("WARNING"):
        made = runner(Lanes(frozenset({ACTIVITY_INGESTED}), 2, min_part=2500))
    assert made.lanes is None
    assert "lanes off: min_part 2500 is over CONSUMER_MAX_BATCH_SIZE 2000" in caplog.text
