"""Reading ahead (``CONSUMER_READ_AHEAD``) through the real broker: the next batch is fetched and
decoded while the handler works on this one, each message is still handled once, per partition
in offset order, and committed only once handled; a rebalance while a batch is read ahead drops
it and the group reads it again from the commit, so each message is handled exactly once across
the members. And the batch's statements and COMMIT are tallied per batch
(``spm_consumer_round_trips``, ``spm_consumer_phase_seconds``)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.db.engine import transaction
from libs.common.kafka.runner import ConsumedMessage, ConsumerRunner, Rejected
from libs.common.settings import KafkaSettings
from libs.common.testing.stack import fast_consumer
from libs.common.topics import ACTIVITY_INGESTED
from tests.integration.polling import eventually

from .test_runner_restart import committed_offsets, produce


class Held:
    """Records each call's (partition, offset, external id); the first ``hold`` calls wait for
    ``release`` once in the handler (``entered`` is set then)."""

    def __init__(self, hold: int = 0) -> None:
        self.calls: list[list[tuple[int, int, str]]] = []
        self.hold = hold
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    @property
    def handled(self) -> list[str]:
        return [external_id for call in self.calls for _, _, external_id in call]

    async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        if len(self.calls) < self.hold:
            self.entered.set()
            await self.release.wait()
        call = []
        for m in messages:
            payload: ActivityIngestedV1 = m.payload
            call.append((m.partition, m.offset, payload.external_id))
        self.calls.append(call)
        return []


def runner_for(
    group: str, settings: KafkaSettings, producer: AIOKafkaProducer, handler: Any, service: str = "tests"
) -> tuple[ConsumerRunner, list[tuple[int, int]]]:
    """A runner reading ahead, of batches of at most 50 with commits only on stop and revocation,
    and the (partition, offset) of every message it decoded, in order."""
    policy = fast_consumer().model_copy(
        update={"commit_interval_ms": 600_000, "max_batch_size": 50, "read_ahead": True}
    )
    runner = ConsumerRunner(
        service=service,
        group_id=group,
        topics=[ACTIVITY_INGESTED],
        handler=handler,
        kafka=settings,
        policy=policy,
        producer=producer,
    )
    decoded: list[tuple[int, int]] = []
    decode = runner._decode

    def recording(raw: Any) -> ConsumedMessage[Any]:
        decoded.append((raw.tp.partition, raw.offset))
        return decode(raw)

    runner._decode = recording  # type: ignore[method-assign]
    return runner, decoded


async def test_the_next_batch_is_decoded_while_the_handler_holds_this_one_and_each_message_is_handled_once(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ids = [f"a-{i}" for i in range(200)]
    assert await produce(kafka_settings, producer, ids) == {0: 100, 1: 100}
    handler = Held(hold=1)
    runner, decoded = runner_for(group, kafka_settings, producer, handler)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(handler.entered.wait(), 60)
    first = 50  # the held batch: max_batch_size

    async def decoded_now() -> int:
        return len(decoded)

    # The next batch is read and decoded while the first is still in the handler.
    await eventually(decoded_now, lambda n: n == first + 50, 60, "the next batch decoded ahead")
    assert handler.calls == []
    handler.release.set()

    async def handled() -> int:
        return len(handler.handled)

    await eventually(handled, lambda n: n == len(ids), 60, "every message handled")
    runner.stop()
    await task
    # Each message decoded once (the batch read ahead is not decoded again) and handled once,
    # each partition in offset order, and every offset committed.
    assert sorted(Counter(decoded).values()) == [1] * len(ids)
    assert sorted(Counter(handler.handled).values()) == [1] * len(ids)
    for partition in (0, 1):
        offsets = [o for call in handler.calls for p, o, _ in call if p == partition]
        assert offsets == list(range(100))
    assert await committed_offsets(kafka_settings, group) == {0: 100, 1: 100}


async def test_without_read_ahead_nothing_more_is_decoded_while_the_handler_holds_a_batch(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ids = [f"n-{i}" for i in range(100)]
    await produce(kafka_settings, producer, ids)
    handler = Held(hold=1)
    runner, decoded = runner_for(group, kafka_settings, producer, handler)
    runner.policy = runner.policy.model_copy(update={"read_ahead": False})
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(handler.entered.wait(), 60)
    # The runner's loop is parked on the handler: nothing else fetches or decodes.
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(decoded) == 50
    handler.release.set()

    async def handled() -> int:
        return len(handler.handled)

    await eventually(handled, lambda n: n == len(ids), 60, "every message handled")
    runner.stop()
    await task
    assert sorted(Counter(decoded).values()) == [1] * len(ids)


async def test_a_rebalance_while_a_batch_is_read_ahead_drops_it_and_every_message_is_handled_exactly_once(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ids = [f"r-{i}" for i in range(200)]
    await produce(kafka_settings, producer, ids)
    first = Held(hold=1)
    runner, decoded = runner_for(group, kafka_settings, producer, first)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(first.entered.wait(), 60)

    async def decoded_now() -> int:
        return len(decoded)

    await eventually(decoded_now, lambda n: n == 100, 60, "the next batch decoded ahead")
    # A second member joins now: the revocation waits for the batch in hand; the batch read
    # ahead belongs to the old assignment and is not handled by this member.
    second = Held()
    joiner, _ = runner_for(group, kafka_settings, producer, second)
    joining = asyncio.create_task(joiner.run())
    await asyncio.sleep(1.0)
    first.release.set()

    async def assigned() -> int:
        return 0 if joiner._consumer is None else len(joiner._consumer.assignment())

    await eventually(assigned, lambda n: n > 0, 60, "the joining member's assignment")

    async def handled() -> int:
        return len(set(first.handled) | set(second.handled))

    await eventually(handled, lambda n: n == len(ids), 60, "every message handled")
    runner.stop()
    joiner.stop()
    await asyncio.gather(task, joining)
    # Each message once across the two members, none lost, none repeated.
    assert sorted(first.handled + second.handled) == sorted(ids)
    assert second.handled, "the joining member took a partition over"
    assert await committed_offsets(kafka_settings, group) == {0: 100, 1: 100}


async def test_each_batch_tallies_its_statements_and_its_commit(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer, db_engine: AsyncEngine
) -> None:
    service = f"tally-{uuid.uuid4().hex[:6]}"
    calls = 0

    async def three_statements(messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        nonlocal calls
        async with transaction(db_engine) as conn:
            for _ in range(3):
                await conn.execute(text("SELECT 1"))
        # Outside a transaction of the batch too: still the batch's statement.
        async with db_engine.connect() as conn:
            await conn.execute(text("SELECT 2"))
        calls += 1
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka_settings, producer, [f"t-{i}" for i in range(100)])
    runner, _ = runner_for(group, kafka_settings, producer, three_statements, service=service)
    task = asyncio.create_task(runner.run())

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"service": service, **labels}) or 0.0

    async def batches() -> float:
        return sample("spm_consumer_round_trips_count")

    await eventually(batches, lambda n: n == 2, 60, "two batches of 50")
    runner.stop()
    await task
    assert calls == 2
    assert sample("spm_consumer_round_trips_sum") == 8
    assert sample("spm_consumer_phase_seconds_count", phase="statements") == 2
    assert sample("spm_consumer_phase_seconds_count", phase="commit") == 2
    assert sample("spm_consumer_phase_seconds_count", phase="handler") == 2
    assert sample("spm_consumer_phase_seconds_count", phase="decode") == 2
    # Statements outside a batch are not tallied.
    async with db_engine.connect() as conn:
        await conn.execute(text("SELECT 3"))
    assert sample("spm_consumer_round_trips_sum") == 8
