"""The ``settings-changed`` event: announced after a settings change commits, heard by every process.

Every process must drop its own cached copy, so the topic is read without a consumer group (a
group would hand each event to one replica only), from its end at start-up: a process that
starts later loads fresh settings anyway. A missed event costs at most the cache's TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from libs.common.contracts.envelope import Envelope, InvalidMessage, decode_body, encode_body
from libs.common.contracts.tenant_settings import SettingsChangedV1
from libs.common.kafka.clients import connection_options, make_producer
from libs.common.kafka.publisher import OutgoingMessage
from libs.common.settings import KafkaSettings
from libs.common.topics import SETTINGS_CHANGED

log = logging.getLogger(__name__)

SettingsChangedHandler = Callable[[SettingsChangedV1], Awaitable[None]]


def settings_changed_message(event: SettingsChangedV1, topic_prefix: str, source: str) -> OutgoingMessage:
    """The event keyed by tenant, so one tenant's changes stay in order."""
    return OutgoingMessage(
        topic=SETTINGS_CHANGED.physical(topic_prefix),
        key=event.tenant_id.encode(),
        value=encode_body(event),
        envelope=Envelope(
            id=str(uuid.uuid4()),
            source=source,
            type=SETTINGS_CHANGED.event_type,
            subject=f"{event.tenant_id}:v{event.version}",
            tenant=event.tenant_id,
        ),
    )


async def announce_settings_changed(settings: KafkaSettings, event: SettingsChangedV1, source: str) -> None:
    """Publish one event with a short-lived producer (the CLI), waiting for the acknowledgement."""
    message = settings_changed_message(event, settings.topic_prefix, source)
    producer = make_producer(settings, "settings")
    await producer.start()
    try:
        await producer.send_and_wait(
            message.topic, value=message.value, key=message.key, headers=message.envelope.to_headers()
        )
    finally:
        await producer.stop()


class SettingsChangeListener:
    """Calls ``on_change`` for every ``settings-changed`` event published after :meth:`start`.

    Runs as a background task of a service; a broker outage is logged and retried, it never
    stops the service (the caches' TTL still bounds staleness meanwhile).
    """

    def __init__(
        self, settings: KafkaSettings, on_change: SettingsChangedHandler, retry_seconds: float = 2.0
    ) -> None:
        self.settings = settings
        self.on_change = on_change
        self.retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        #: Set once the listener reads from the end of every partition (tests wait for it).
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="settings-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                log.warning("settings-changed listener lost the broker; retrying", extra={"error": repr(exc)})
            self.listening.clear()
            await asyncio.sleep(self.retry_seconds)

    async def _listen(self) -> None:
        topic = SETTINGS_CHANGED.physical(self.settings.topic_prefix)
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **connection_options(self.settings))
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer.client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not assigned:
                raise KafkaError(f"topic {topic} does not exist yet")
            consumer.assign(assigned)
            await consumer.seek_to_end(*assigned)
            for tp in assigned:
                await consumer.position(tp)
            self.listening.set()
            while True:
                batches = await consumer.getmany(timeout_ms=1_000)
                for records in batches.values():
                    for record in records:
                        await self._deliver(record.value)
        finally:
            await consumer.stop()

    async def _deliver(self, value: bytes | None) -> None:
        try:
            event = decode_body(SettingsChangedV1, value)
        except InvalidMessage as exc:
            log.warning("ignoring an invalid settings-changed event", extra={"error": str(exc)})
            return
        try:
            await self.on_change(event)
        except Exception:
            log.exception("applying a settings change failed", extra={"tenant_id": event.tenant_id})
