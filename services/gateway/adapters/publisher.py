"""Manual attribution overrides published to ``attribution-overridden``, answered only after acks=all."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from libs.common.contracts.commands import AttributionOverriddenV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.kafka.clients import make_producer
from libs.common.settings import KafkaSettings
from libs.common.topics import ATTRIBUTION_OVERRIDDEN

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time; the client should retry later (503)."""


class OverridePublisher:
    """Owns a producer started on first use, so the read API comes up while the broker is down."""

    def __init__(self, settings: KafkaSettings, timeout_seconds: float, source: str = "spm/gateway") -> None:
        self.settings = settings
        self.timeout = timeout_seconds
        self.source = source
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings, "gateway")
                try:
                    await producer.start()
                except (KafkaError, OSError):
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, command: AttributionOverriddenV1, event_id: str) -> None:
        """Send the command keyed by activity id and wait for the ack, or raise :class:`BrokerUnavailable`."""
        envelope = Envelope(
            id=event_id,
            source=self.source,
            type=ATTRIBUTION_OVERRIDDEN.event_type,
            subject=str(command.activity_id),
            tenant=command.tenant_id,
        )
        try:
            async with asyncio.timeout(self.timeout):
                producer = await self._ready_producer()
                await producer.send_and_wait(
                    ATTRIBUTION_OVERRIDDEN.physical(self.settings.topic_prefix),
                    value=encode_body(command),
                    key=str(command.activity_id).encode(),
                    headers=envelope.to_headers(),
                )
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("broker did not acknowledge an override", extra={"error": repr(exc)})
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
