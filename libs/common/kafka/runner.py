"""The consumer runner: at-least-once processing with an explicit commit policy.

Contract:

* Offsets are committed (offset + 1 per partition) only after the batch handler returned,
  i.e. after its side effects are durable. Commits are throttled to ``commit_interval_ms``
  and forced when partitions are revoked and on shutdown.
* A message that cannot be decoded or validated is poison: it goes to the topic's ``-dlq``
  twin with provenance headers, and the broker's acknowledgement is awaited before its
  offset may be committed. More than ``dlq_limit`` poison messages within
  ``dlq_window_messages`` stops the consumer (:class:`DlqLimitExceeded`): a bad deploy must
  not drain a topic into the DLQ.
* Any exception from the handler is transient: the batch is retried with exponential
  backoff while its partitions are paused; past ``retry_deadline_ms`` the runner raises and
  nothing of that batch is committed, so the orchestrator restarts the process and the
  batch is read again. Handlers must therefore be idempotent.
* :meth:`ConsumerRunner.stop` drains: the batch in hand finishes, offsets are committed and
  the consumer leaves its group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import BaseModel

from libs.common.contracts.envelope import Envelope, InvalidMessage, decode_body
from libs.common.kafka.clients import connection_options
from libs.common.settings import ConsumerSettings, KafkaSettings
from libs.common.telemetry import CONSUMER_BATCH_SECONDS, CONSUMER_LAG, CONSUMER_MESSAGES, DLQ_MESSAGES
from libs.common.topics import Topic

log = logging.getLogger(__name__)

PayloadT = TypeVar("PayloadT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ConsumedMessage(Generic[PayloadT]):
    """A decoded message with its position, so handlers can log and route by topic."""

    topic: Topic
    partition: int
    offset: int
    key: bytes | None
    envelope: Envelope
    payload: PayloadT


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message the handler found unprocessable for good (it goes to the DLQ)."""

    message: ConsumedMessage[Any]
    reason: str


BatchHandler = Callable[[Sequence[ConsumedMessage[Any]]], Awaitable[Sequence[Rejected]]]


class DlqLimitExceeded(RuntimeError):
    """Too many poison messages in a row: stop rather than drain the topic into the DLQ."""


class RetryDeadlineExceeded(RuntimeError):
    """A transient failure outlasted the retry deadline; the process should exit and restart."""


@dataclass(slots=True)
class _Raw:
    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Waits for the batch in hand, so the next owner starts after our last durable offset.
        async with self._runner.processing:
            await self._runner.commit_pending(only=revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={"partitions": sorted(f"{tp.topic}/{tp.partition}" for tp in assigned)},
        )


class ConsumerRunner:
    """Consumes ``topics`` in consumer group ``group_id`` and feeds batches to ``handler``."""

    def __init__(
        self,
        *,
        service: str,
        group_id: str,
        topics: Sequence[Topic],
        handler: BatchHandler,
        kafka: KafkaSettings,
        policy: ConsumerSettings,
        producer: AIOKafkaProducer,
    ) -> None:
        self.service = service
        self.group_id = group_id
        self.topics = tuple(topics)
        self.handler = handler
        self.kafka = kafka
        self.policy = policy
        self.producer = producer
        self.processing = asyncio.Lock()
        self._by_physical = {t.physical(kafka.topic_prefix): t for t in self.topics}
        self._pending: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        self._recent_poison: deque[bool] = deque(maxlen=policy.dlq_window_messages)
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.started = asyncio.Event()

    def stop(self) -> None:
        """Ask the runner to finish the batch in hand, commit and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=self.group_id,
            client_id=f"{self.kafka.client_id}-{self.service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.policy.max_batch_size,
            session_timeout_ms=self.policy.session_timeout_ms,
            max_poll_interval_ms=self.policy.max_poll_interval_ms,
            rebalance_timeout_ms=self.policy.rebalance_timeout_ms,
            **{
                **connection_options(self.kafka),
                # A broker may hold a JoinGroup until the rebalance completes: the request
                # must outlive the rebalance timeout or the member re-joins forever.
                "request_timeout_ms": max(
                    self.kafka.request_timeout_ms, self.policy.rebalance_timeout_ms + 10_000
                ),
            },
        )
        consumer.subscribe(topics=list(self._by_physical), listener=_CommitOnRevoke(self))
        self._consumer = consumer
        await consumer.start()
        self.started.set()
        try:
            while not self._stopping.is_set():
                batch = await self._poll(consumer)
                if batch:
                    async with self.processing:
                        await self._process(consumer, batch)
                if self._commit_due():
                    async with self.processing:
                        await self.commit_pending()
            async with self.processing:
                await self.commit_pending()
        finally:
            self._consumer = None
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer) -> list[_Raw]:
        stop = asyncio.ensure_future(self._stopping.wait())
        fetch = asyncio.ensure_future(
            consumer.getmany(timeout_ms=self.policy.max_batch_time_ms, max_records=self.policy.max_batch_size)
        )
        done, _ = await asyncio.wait({stop, fetch}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:
            fetch.cancel()
            stop.cancel()
            return []
        stop.cancel()
        records = fetch.result()
        out: list[_Raw] = []
        for tp, messages in records.items():
            for m in messages:
                out.append(_Raw(tp, m.offset, m.key, m.value, list(m.headers or ())))
        return out

    async def _process(self, consumer: AIOKafkaConsumer, batch: list[_Raw]) -> None:
        # A rebalance may have revoked partitions between the fetch and taking the lock:
        # their new owner re-reads them, so we drop ours rather than commit for them.
        owned = consumer.assignment()
        batch = [raw for raw in batch if raw.tp in owned]
        if not batch:
            return
        started = time.monotonic()
        poison_before = sum(self._recent_poison)
        decoded: list[ConsumedMessage[Any]] = []
        poison: list[tuple[_Raw, str]] = []
        for raw in batch:
            try:
                decoded.append(self._decode(raw))
                self._recent_poison.append(False)
            except InvalidMessage as exc:
                poison.append((raw, str(exc)))
                self._recent_poison.append(True)
        rejected = await self._handle_with_retry(consumer, decoded) if decoded else []
        for message, reason in ((r.message, r.reason) for r in rejected):
            poison.append((self._raw_of(batch, message), reason))
            self._recent_poison.append(True)
        for index, (raw, reason) in enumerate(poison):
            # Checked before each send, so a bad batch cannot push more than the limit to the DLQ.
            if poison_before + index + 1 > self.policy.dlq_limit:
                raise DlqLimitExceeded(
                    f"more than {self.policy.dlq_limit} poison messages within the last "
                    f"{len(self._recent_poison)}: stopping without committing; inspect the DLQ and the last deploy"
                )
            await self._dead_letter(raw, reason)
        for raw in batch:
            current = self._pending.get(raw.tp, -1)
            self._pending[raw.tp] = max(current, raw.offset + 1)
        for tp, next_offset in self._pending.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                CONSUMER_LAG.labels(self.service, self._logical(tp), str(tp.partition)).set(
                    max(0, highwater - next_offset)
                )
        CONSUMER_BATCH_SECONDS.labels(self.service).observe(time.monotonic() - started)
        for message in decoded:
            CONSUMER_MESSAGES.labels(self.service, message.topic.name, "processed").inc()
        if log.isEnabledFor(logging.DEBUG):
            for tp in sorted({raw.tp for raw in batch}, key=lambda tp: (tp.topic, tp.partition)):
                offsets = [raw.offset for raw in batch if raw.tp == tp]
                log.debug(
                    "batch processed",
                    extra={
                        "topic": self._logical(tp),
                        "partition": tp.partition,
                        "offset": offsets[0],
                        "last_offset": offsets[-1],
                        "messages": len(offsets),
                        "event_id": next(
                            (
                                m.envelope.id
                                for m in decoded
                                if m.topic.name == self._logical(tp)
                                and m.partition == tp.partition
                                and m.offset == offsets[-1]
                            ),
                            None,
                        ),
                    },
                )

    @staticmethod
    def _raw_of(batch: list[_Raw], message: ConsumedMessage[Any]) -> _Raw:
        for raw in batch:
            if raw.tp.partition == message.partition and raw.offset == message.offset:
                return raw
        raise LookupError("rejected message is not in the batch")

    def _logical(self, tp: TopicPartition) -> str:
        topic = self._by_physical.get(tp.topic)
        return topic.name if topic else tp.topic

    def _decode(self, raw: _Raw) -> ConsumedMessage[Any]:
        topic = self._by_physical[raw.tp.topic]
        envelope = Envelope.from_headers(raw.headers)
        if envelope.type != topic.event_type:
            raise InvalidMessage(f"unexpected event type {envelope.type!r} on {topic.name}")
        payload = decode_body(topic.payload, raw.value)
        return ConsumedMessage(topic, raw.tp.partition, raw.offset, raw.key, envelope, payload)

    async def _handle_with_retry(
        self, consumer: AIOKafkaConsumer, decoded: list[ConsumedMessage[Any]]
    ) -> Sequence[Rejected]:
        backoff = self.policy.retry_initial_backoff_ms / 1000
        deadline = time.monotonic() + self.policy.retry_deadline_ms / 1000
        paused = False
        try:
            while True:
                try:
                    return await self.handler(decoded)
                except Exception as exc:
                    if time.monotonic() + backoff > deadline:
                        raise RetryDeadlineExceeded(
                            f"batch of {len(decoded)} still failing after {self.policy.retry_deadline_ms} ms"
                        ) from exc
                    log.warning(
                        "batch failed, retrying: %r",
                        exc,
                        extra={"error": repr(exc), "backoff_seconds": backoff, "messages": len(decoded)},
                    )
                    for message in decoded:
                        CONSUMER_MESSAGES.labels(self.service, message.topic.name, "retried").inc()
                    if not paused:
                        # Stop fetching while we cannot make progress; the group membership stays alive.
                        consumer.pause(*consumer.assignment())
                        paused = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.policy.retry_max_backoff_ms / 1000)
        finally:
            if paused:
                consumer.resume(*consumer.assignment())

    async def _dead_letter(self, raw: _Raw, reason: str) -> None:
        topic = self._by_physical[raw.tp.topic]
        # Earlier provenance is replaced, but the replay count survives: it caps `spm dlq replay`.
        headers = [h for h in raw.headers if not h[0].startswith("dlq_") or h[0] == "dlq_replays"]
        headers += [
            ("dlq_source_topic", raw.tp.topic.encode()),
            ("dlq_partition", str(raw.tp.partition).encode()),
            ("dlq_offset", str(raw.offset).encode()),
            ("dlq_error", reason[:2000].encode("utf-8", "replace")),
            ("dlq_service", self.service.encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.producer.send_and_wait(
            topic.physical_dlq(self.kafka.topic_prefix), value=raw.value, key=raw.key, headers=headers
        )
        DLQ_MESSAGES.labels(self.service, topic.name).inc()
        CONSUMER_MESSAGES.labels(self.service, topic.name, "dlq").inc()
        log.warning(
            "message sent to DLQ",
            extra={
                "topic": topic.name,
                "partition": raw.tp.partition,
                "offset": raw.offset,
                "event_id": next(
                    (v.decode("utf-8", "replace") for k, v in raw.headers if k == "ce_id"), None
                ),
                "error": reason[:500],
            },
        )

    def _commit_due(self) -> bool:
        return bool(self._pending) and (
            time.monotonic() - self._last_commit >= self.policy.commit_interval_ms / 1000
        )

    async def commit_pending(self, only: set[TopicPartition] | None = None) -> None:
        """Commit processed offsets (all, or only those of ``only``). Caller holds ``processing``."""
        consumer = self._consumer
        if consumer is None or not self._pending:
            return
        offsets = {tp: off for tp, off in self._pending.items() if only is None or tp in only}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved on; the new owner re-reads from the last commit (idempotent handlers).
            log.warning("commit rejected after rebalance", extra={"error": repr(exc)})
        except KafkaError:
            raise
        for tp in offsets:
            self._pending.pop(tp, None)
        self._last_commit = time.monotonic()
