"""Publishing from an HTTP request with acknowledgement: the caller answers 2xx only after acks=all.

Used by ingest (activities, entities, raw captures) and the gateway (admin overrides).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from libs.common.contracts.envelope import Envelope
from libs.common.kafka.clients import make_producer
from libs.common.settings import KafkaSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time; the client should retry later (503)."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: bytes
    value: bytes
    envelope: Envelope


async def send_batched(producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage]) -> None:
    """Send keyed messages as one record batch per partition (or more, when one fills) and wait
    for every acknowledgement.

    Lands each message where ``producer.send`` would (the default partitioner on its key, so
    one key's messages keep their order), but without a future and a delivery record per
    message: for a consumer's batch of a thousand outputs, those were about 8 % of the
    attribution service's CPU. For producers made by ``clients.make_producer`` (default
    partitioner), every message needs a key.
    """
    partitions: dict[str, list[int]] = {}
    placed: dict[tuple[str, bytes], int] = {}
    groups: dict[tuple[str, int], list[OutgoingMessage]] = {}
    for m in messages:
        where = placed.get((m.topic, m.key))
        if where is None:
            if m.topic not in partitions:
                partitions[m.topic] = sorted(await producer.partitions_for(m.topic))
            where = DefaultPartitioner()(m.key, partitions[m.topic], partitions[m.topic])
            placed[(m.topic, m.key)] = where
        groups.setdefault((m.topic, where), []).append(m)
    futures = []
    for (topic, partition), group in groups.items():
        batch = producer.create_batch()
        for m in group:
            if (
                batch.append(key=m.key, value=m.value, timestamp=None, headers=m.envelope.to_headers())
                is None
            ):
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if (
                    batch.append(key=m.key, value=m.value, timestamp=None, headers=m.envelope.to_headers())
                    is None
                ):
                    raise MessageSizeTooLargeError(
                        f"a message of {len(m.value)} bytes does not fit in a batch"
                    )
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*futures)


class KafkaPublisher:
    """Owns the producer; starts it lazily so the API comes up (and answers 503) while the broker is down."""

    def __init__(self, settings: KafkaSettings, timeout_seconds: float, client_id: str) -> None:
        self.settings = settings
        self.timeout = timeout_seconds
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
                except (KafkaError, OSError):
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
                futures = [
                    await producer.send(m.topic, value=m.value, key=m.key, headers=m.envelope.to_headers())
                    for m in messages
                ]
                await asyncio.gather(*futures)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("broker did not acknowledge", extra={"error": repr(exc), "messages": len(messages)})
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
