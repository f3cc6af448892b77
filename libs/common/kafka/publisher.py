"""Publishing from an HTTP request with acknowledgement: the caller answers 2xx only after acks=all.

Used by ingest (activities, entities, raw captures) and the gateway (admin overrides).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder

from libs.common.contracts.envelope import Envelope
from libs.common.kafka.clients import BATCH_BYTES_CAP, make_producer, producer_batch_bytes
from libs.common.kafka.partitioning import KeyHashPartitioner
from libs.common.settings import KafkaSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time; the client should retry later (503)."""


class OutgoingMessage(msgspec.Struct, frozen=True):
    """One message to publish. A frozen msgspec struct, as ``Envelope``: one is built per message
    published, and a frozen dataclass set each field through ``object.__setattr__``."""

    topic: str
    key: bytes
    value: bytes
    envelope: Envelope


class KafkaPublisher:
    """Owns the producer; starts it lazily so the API comes up (and answers 503) while the broker is down."""

    def __init__(self, settings: KafkaSettings, timeout_seconds: float, client_id: str) -> None:
        self.settings = settings
        self.timeout = timeout_seconds
        self.batch_bytes = producer_batch_bytes(settings)
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings, self.client_id)
                try:
                    await producer.start()
                except BaseException:  # a failure, or the warm-up cancelled at shutdown
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send every message and wait for all acknowledgements, or raise :class:`BrokerUnavailable`."""
        if not messages:
            return
        try:
            async with asyncio.timeout(self.timeout):
                producer = await self._ready_producer()
                if len(messages) >= BATCHED_FROM:
                    futures = await send_in_batches(producer, messages, self.batch_bytes)
                else:
                    futures = [
                        await producer.send(
                            m.topic, value=m.value, key=m.key, headers=m.envelope.to_headers()
                        )
                        for m in messages
                    ]
                await asyncio.gather(*futures)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("broker did not acknowledge", extra={"error": repr(exc), "messages": len(messages)})
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    @property
    def partitions_known(self) -> dict[str, int]:
        """The partition count of each topic the producer has metadata for (none before it started)."""
        if self._producer is None:
            return {}
        cluster = self._producer.client.cluster
        return {topic: len(cluster.partitions_for_topic(topic) or ()) for topic in cluster.topics()}

    async def warm_up(self, topics: Sequence[str], timeout_seconds: float = 30.0) -> None:
        """Start the producer and read ``topics``' partitions before the first request needs them.

        Best effort, run in the background at start-up: a broker that is down leaves the
        producer to the first publish, as before. Without it the first request after a start paid
        the connection and the metadata round trips inside its own acknowledgement timeout.
        """
        try:
            async with asyncio.timeout(timeout_seconds):
                producer = await self._ready_producer()
                for topic in topics:
                    await producer.partitions_for(topic)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.info("broker not ready at start; the first publish connects", extra={"error": repr(exc)})

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


#: From this many messages a publish builds its own record batches. Fewer go through ``send``,
#: which joins the batch lingering for the partition: a batch of our own would first wait for
#: that one to be drained (aiokafka queues one batch per partition at a time), up to the linger
#: time per request, which would cap concurrent single callbacks.
BATCHED_FROM = 64


async def send_in_batches(
    producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage], batch_bytes: int = BATCH_BYTES_CAP
) -> list[asyncio.Future[Any]]:
    """Queue ``messages`` as record batches per (topic, partition); the futures of their acks.

    Each message lands in the partition ``producer.send`` would choose for its key (aiokafka's
    own choice, so a key keeps its partition), in the order given. Batches skip ``send``'s
    per-message future and coroutine: about a third of the client's CPU per message, measured.
    A message bigger than ``batch_bytes`` goes through ``send`` as before (which refuses one
    over the request limit), after the batches queued before it, to keep the order.
    ``batch_bytes`` is the producer's batch size (``clients.producer_batch_bytes``).

    Ingest's publishes and attribution's outputs (a consumer batch of versions) both go this way.
    A key's partition is asked of the producer once per call: attribution's keys repeat (one per
    rep), and the producer's choice is a pure-Python murmur2 of the key over the topic's
    partitions, about 4 us a message; with our ``KeyHashPartitioner`` the call's keys are hashed
    together first (``hash_ahead``), about a quarter of that.
    """
    partitioner = getattr(producer, "_partitioner", None)
    if not isinstance(partitioner, KeyHashPartitioner):
        return await _send_in_batches(producer, messages, batch_bytes)
    # The keys hashed together (``murmur2_many``: a quarter of the instructions of one murmur2 each).
    keys = [m.key for m in messages]
    partitioner.hash_ahead(keys)
    try:
        return await _send_in_batches(producer, messages, batch_bytes)
    finally:
        partitioner.forget(keys)


async def _send_in_batches(
    producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage], batch_bytes: int
) -> list[asyncio.Future[Any]]:
    futures: list[asyncio.Future[Any]] = []
    open_batches: dict[tuple[str, int], BatchBuilder] = {}
    partitions: set[str] = set()
    targets: dict[tuple[str, bytes], tuple[str, int]] = {}

    async def queue_open_batches() -> None:
        for (topic, partition), batch in open_batches.items():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        open_batches.clear()

    for m in messages:
        if m.topic not in partitions:
            await producer.partitions_for(m.topic)  # waits for the topic's metadata, as send does
            partitions.add(m.topic)
        headers = m.envelope.to_headers()
        if len(m.key) + len(m.value) > batch_bytes:
            await queue_open_batches()
            futures.append(await producer.send(m.topic, value=m.value, key=m.key, headers=headers))
            continue
        target = targets.get((m.topic, m.key))
        if target is None:
            target = (m.topic, producer._partition(m.topic, None, m.key, m.value, m.key, m.value))
            targets[m.topic, m.key] = target
        batch = open_batches.get(target)
        if batch is not None and batch.append(key=m.key, value=m.value, timestamp=None, headers=headers):
            continue
        if batch is not None:  # full: queue it and start the next one
            futures.append(
                await producer.send_batch(open_batches.pop(target), target[0], partition=target[1])
            )
        batch = open_batches[target] = producer.create_batch()
        # The first record of a batch is always taken, whatever its size.
        batch.append(key=m.key, value=m.value, timestamp=None, headers=headers)
    await queue_open_batches()
    return futures
