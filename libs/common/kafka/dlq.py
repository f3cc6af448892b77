"""Reading and replaying a topic's dead-letter twin.

Contract:

* :func:`inspect_dead_letters` reads the DLQ from its beginning without a consumer group
  (nothing is committed), so inspecting never changes what a replay will see.
* :func:`replay_dead_letters` reads the DLQ in consumer group ``<client_id>-dlq-replay``
  up to the end offsets seen when it started, re-publishes each message to the topic it came
  from (``dlq_source_topic``, which must be the topic asked for) with its original key, value
  and headers, and a ``dlq_replays`` header incremented by one. The DLQ group's offsets are
  committed only after the broker acknowledged every re-published message before them, so a
  crash mid-replay re-publishes at most the unacknowledged tail (consumers are idempotent).
* A message whose ``dlq_replays`` already reached ``max_replays`` is refused: it is not
  re-published, it is reported, and the group moves past it (it keeps failing; it stays in the
  DLQ topic for :func:`inspect_dead_letters`). Replays therefore cannot loop forever.
* ``dry_run`` publishes and commits nothing; it reports what a replay would do.
* ``tenant`` replays that tenant's letters only (``ce_tenant``), in a group of its own
  (``<client_id>-dlq-replay-<tenant>``, from the DLQ's beginning the first time): the other
  tenants' letters are neither re-published nor counted against their cap, and the whole-DLQ
  group's position does not move. A tenant whose cause was fixed is replayed without sending
  back round the letters of another whose cause is not (which, refused at their cap after a few
  such replays, were passed for good).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from libs.common.kafka.clients import connection_options, end_offsets, make_producer
from libs.common.settings import KafkaSettings
from libs.common.topics import REGISTRY, Topic

REPLAYS_HEADER = "dlq_replays"
PROVENANCE_HEADERS = (
    "dlq_source_topic",
    "dlq_partition",
    "dlq_offset",
    "dlq_error",
    "dlq_service",
    "dlq_failed_at",
)
DEFAULT_MAX_REPLAYS = 3


class UnknownTopic(ValueError):
    """The name is not a registry topic with a DLQ twin."""


def dlq_topic(name: str) -> Topic:
    """The registry topic whose dead letters ``name`` (logical, with or without ``-dlq``) means."""
    logical = name.removesuffix("-dlq")
    for topic in REGISTRY:
        if topic.name == logical and topic.has_dlq:
            return topic
    known = ", ".join(t.name for t in REGISTRY if t.has_dlq)
    raise UnknownTopic(f"no topic {name!r} with a DLQ; choose from {known}")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of a DLQ with its position and provenance."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def replays(self) -> int:
        raw = self.header(REPLAYS_HEADER)
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    @property
    def tenant(self) -> str | None:
        """Whose message it is: its ``ce_tenant`` header (None without one)."""
        return self.header("ce_tenant")

    @property
    def provenance(self) -> dict[str, str | None]:
        return {name: self.header(name) for name in PROVENANCE_HEADERS}

    def replayed_headers(self) -> list[tuple[str, bytes]]:
        """Original headers without the DLQ ones, plus the incremented replay count."""
        kept = [(k, v) for k, v in self.headers if not k.startswith("dlq_")]
        return [*kept, (REPLAYS_HEADER, str(self.replays + 1).encode())]


@dataclass
class ReplayReport:
    """What a replay did (or, in a dry run, would do)."""

    seen: int = 0
    replayed: int = 0
    refused: list[DeadLetter] = field(default_factory=list)
    foreign: list[DeadLetter] = field(default_factory=list)
    #: Letters of other tenants than the one replayed (left as they are).
    other_tenants: int = 0
    dry_run: bool = False


Progress = Callable[[int, int], None]


def _consumer(settings: KafkaSettings, group_id: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        group_id=group_id,
        client_id=f"{settings.client_id}-dlq",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **connection_options(settings),
    )


async def _partitions(consumer: AIOKafkaConsumer, name: str) -> list[TopicPartition]:
    if name not in await consumer.topics():  # also refreshes the cluster metadata
        return []
    partitions = consumer.partitions_for_topic(name) or set()
    return [TopicPartition(name, p) for p in sorted(partitions)]


async def _read(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    ends: dict[TopicPartition, int],
    limit: int | None,
    on_batch: Callable[[list[DeadLetter], dict[TopicPartition, int]], Awaitable[None]] | None = None,
) -> list[DeadLetter]:
    """Fetch until every partition reached its end offset (or ``limit`` messages); the records
    fetched, or, given ``on_batch``, none (each batch is handed to it: a whole topic is not held)."""
    out: list[DeadLetter] = []
    fetched = 0
    remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
    while remaining and (limit is None or fetched < limit):
        records = await consumer.getmany(*remaining, timeout_ms=1_000, max_records=500)
        batch: list[DeadLetter] = []
        next_offsets: dict[TopicPartition, int] = {}
        for tp, messages in records.items():
            for m in messages:
                if m.offset >= ends[tp] or (limit is not None and fetched + len(batch) >= limit):
                    break
                batch.append(DeadLetter(tp.partition, m.offset, m.key, m.value, tuple(m.headers or ())))
                next_offsets[tp] = m.offset + 1
        fetched += len(batch)
        if on_batch is None:
            out += batch
        elif batch:
            await on_batch(batch, next_offsets)
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
    return out


async def _start(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """Start ``client``; closed again when it cannot (no "Unclosed" warning after the error)."""
    try:
        await client.start()
    except BaseException:
        await client.stop()
        raise


async def _start_both(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
    """Start both, or neither is left open."""
    try:
        await _start(consumer)
    except BaseException:
        await producer.stop()
        raise
    try:
        await _start(producer)
    except BaseException:
        await consumer.stop()
        raise


async def inspect_dead_letters(settings: KafkaSettings, topic: Topic, limit: int = 20) -> list[DeadLetter]:
    """The first ``limit`` dead letters of ``topic``, read without a group (nothing committed)."""
    return await read_from_start(settings, topic.physical_dlq(settings.topic_prefix), limit=limit)


async def read_from_start(
    settings: KafkaSettings,
    name: str,
    on_batch: Callable[[list[DeadLetter]], Awaitable[None]] | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """The records of the physical topic ``name`` from its beginning to its end offsets when
    called (``limit``: at most that many), read without a group (nothing committed), as
    :func:`inspect_dead_letters` reads a DLQ; given ``on_batch``, each batch is handed to it and
    none returned (``spm backfill-deal-names`` reads ``crm-entity-changed`` whole)."""
    consumer = _consumer(settings, None)
    await _start(consumer)
    try:
        partitions = await _partitions(consumer, name)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await end_offsets(settings, partitions)

        async def handed(batch: list[DeadLetter], _: dict[TopicPartition, int]) -> None:
            assert on_batch is not None
            await on_batch(batch)

        return await _read(consumer, partitions, ends, limit, None if on_batch is None else handed)
    finally:
        await consumer.stop()


async def replay_dead_letters(
    settings: KafkaSettings,
    topic: Topic,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
    max_replays: int = DEFAULT_MAX_REPLAYS,
    on_progress: Progress | None = None,
    tenant: str | None = None,
) -> ReplayReport:
    """Re-publish ``topic``'s dead letters to it (``tenant``: that tenant's only); see the module contract."""
    name = topic.physical_dlq(settings.topic_prefix)
    source = topic.physical(settings.topic_prefix)
    report = ReplayReport(dry_run=dry_run)
    group = f"{settings.client_id}-dlq-replay" + ("" if tenant is None else f"-{tenant}")
    consumer = _consumer(settings, group)
    producer = make_producer(settings, "dlq-replay")
    await _start_both(consumer, producer)
    try:
        partitions = await _partitions(consumer, name)
        if not partitions:
            return report
        consumer.assign(partitions)
        committed = {tp: await consumer.committed(tp) for tp in partitions}
        for tp, offset in committed.items():
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        ends = await end_offsets(settings, partitions)
        total = 0
        for tp in partitions:
            total += max(0, ends[tp] - await consumer.position(tp))
        if max_messages is not None:
            total = min(total, max_messages)

        async def handle(batch: list[DeadLetter], next_offsets: dict[TopicPartition, int]) -> None:
            acks = []
            for letter in batch:
                report.seen += 1
                if tenant is not None and letter.tenant != tenant:
                    report.other_tenants += 1
                elif letter.header("dlq_source_topic") not in (None, source):
                    report.foreign.append(letter)
                elif letter.replays >= max_replays:
                    report.refused.append(letter)
                else:
                    report.replayed += 1
                    if not dry_run:
                        acks.append(
                            await producer.send(
                                source, value=letter.value, key=letter.key, headers=letter.replayed_headers()
                            )
                        )
            if not dry_run:
                for ack in acks:
                    # Raises if the broker refused one: nothing of this batch is committed then.
                    await ack
                await consumer.commit(next_offsets)
            if on_progress is not None:
                on_progress(report.seen, total)

        await _read(consumer, partitions, ends, max_messages, handle)
        return report
    finally:
        await producer.stop()
        await consumer.stop()
