"""The consumer runner: at-least-once processing with an explicit commit policy.

Contract:

* Offsets are committed (offset + 1 per partition) only after the batch handler returned,
  i.e. after its side effects are durable. Commits are throttled to ``commit_interval_ms``
  and forced when partitions are revoked and on shutdown.
* A message that cannot be decoded or validated, or whose ``ce_tenant`` header is not its
  payload's ``tenant_id``, is poison: it goes to the topic's ``-dlq``
  twin with provenance headers, and the broker's acknowledgement is awaited before its
  offset may be committed. More than ``dlq_limit`` poison messages within
  ``dlq_window_messages`` stops the consumer (:class:`DlqLimitExceeded`): a bad deploy must
  not drain a topic into the DLQ. A bad deploy fails every tenant alike, one tenant's data
  fails only that tenant: so the limit stops the consumer only when the poison in the window
  comes from two or more tenants, or when the consumer has seen one tenant only (a
  single-tenant installation cannot tell the two apart). Poison confined to one tenant while
  others are served goes to the DLQ without stopping anyone (:func:`limit_stops_consumer`).
* A handler failure is classified by :func:`libs.common.kafka.failures.is_transient`.
  A **transient** one (connection lost, timeout, serialization failure, deadlock) is retried
  with exponential backoff while the partitions are paused; past ``retry_deadline_ms`` the
  runner raises :class:`RetryDeadlineExceeded` and nothing of that batch is committed, so the
  orchestrator restarts the process and the batch is read again.
* A **permanent** one (data error, constraint violation, validation error, a
  :class:`~libs.common.kafka.failures.PermanentError`) repeats for the same input, so the
  runner isolates it instead: the batch is split in halves and the handler is called again on
  each half, recursively, until the failing messages stand alone. Those go to the DLQ with
  the error in ``dlq_error``; every other message is handled and committed. One bad message
  costs about ``2 log2(batch)`` extra handler calls and never a restart. A transient failure
  during the split takes the retry path above. The DLQ limit still applies: the split stops
  as soon as the batch holds more poison than the limit allows. A failure that names a
  tenant (a ``PermanentError`` with ``tenant_id``, such as
  :class:`~libs.common.kafka.failures.TenantSettingsInvalid`) parks all of that tenant's
  messages of the failing part at once and the rest is handled again; those letters do not
  count toward the DLQ limit, so one tenant's settings never stop the consumer for all.
* Handlers must therefore be idempotent and all-or-nothing per call (one transaction): a
  failed call leaves no trace, and a message may be handled again in a smaller batch.
* Progress is observable while stuck: a background task sets ``spm_consumer_lag_messages``
  and ``spm_consumer_oldest_unprocessed_age_seconds`` per topic-partition from the broker's
  end offsets every ``progress_interval_ms``, and :meth:`ConsumerRunner.retrying_for` tells
  readiness how long the current transient failure has lasted.
* :meth:`ConsumerRunner.stop` drains: the batch in hand finishes, offsets are committed and
  the consumer leaves its group.
* **Lanes** (:class:`Lanes`, opt-in per service): a batch holding only messages of the lanes'
  topics is split by partition into up to ``count`` parts, handled concurrently, each as a batch
  of its own (its own handler call, transaction, retries, isolation and DLQ). A partition is in
  one part only, in its order, so per-key order holds. Each part's offsets become committable
  when that part's handler returned; a part that fails stops the consumer as a batch would
  (the parts beside it finish first), and nothing of the failing part is committed. A batch
  holding any other topic is handled whole, alone. A batch is split only into two parts or
  more of at least ``min_part`` messages each; then each part holds up to ``max_batch_size``
  (the lanes a read left short are topped up from what the client holds), so a batch holds up
  to ``count`` times that. A batch not split is never over ``max_batch_size`` (what a top-up
  took is given back). The next poll waits for every part.
* A batch that fails (retry deadline, a DLQ send) commits, before the consumer stops, the
  offsets of what was handled before it and beside it; not past the DLQ limit, which stops
  without committing (one part past it is enough, whatever the others raised).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import BaseModel

from libs.common.collector import collector_paused
from libs.common.contracts.envelope import Envelope, InvalidMessage, check_tenant
from libs.common.kafka.clients import connection_options
from libs.common.kafka.failures import describe, is_transient, tenant_scope
from libs.common.settings import ConsumerSettings, KafkaSettings
from libs.common.telemetry import (
    CONSUMER_BATCH_SECONDS,
    CONSUMER_ISOLATION_CALLS,
    CONSUMER_LAG,
    CONSUMER_MESSAGES,
    CONSUMER_OLDEST_AGE,
    CONSUMER_PHASE_SECONDS,
    CONSUMER_RETRYING_SECONDS,
    CONSUMER_ROUND_TRIPS,
    DLQ_MESSAGES,
    BatchTally,
    tallying,
)
from libs.common.topics import Topic

log = logging.getLogger(__name__)

PayloadT = TypeVar("PayloadT", bound=BaseModel)
MessageT = TypeVar("MessageT")


class ConsumedMessage(msgspec.Struct, Generic[PayloadT], frozen=True):
    """A decoded message with its position, so handlers can log and route by topic.

    A frozen msgspec struct, as ``Envelope``: one is built per message consumed, and a frozen
    dataclass sets each of its six fields through ``object.__setattr__`` (about 7,700
    instructions a message against a few hundred). It compares and hashes the same."""

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
    #: Refused with the rest of its tenant's messages (its settings): not counted by the DLQ limit.
    tenant_wide: bool = False


BatchHandler = Callable[[Sequence[ConsumedMessage[Any]]], Awaitable[Sequence[Rejected]]]


@dataclass(frozen=True, slots=True)
class Lanes:
    """Partitions of ``topics`` handled concurrently, in up to ``count`` parts of a batch.

    Only for a handler whose calls on different partitions of these topics may run at once,
    as two instances of the service would run them (each call its own transaction)."""

    topics: frozenset[Topic]
    count: int = 1
    #: A batch is split only when each part would hold about this many messages: a consumer that
    #: has caught up handles its small batches whole, as one call costs what two halves cost.
    min_part: int = 500


class DlqLimitExceeded(RuntimeError):
    """Too many poison messages in a row: stop rather than drain the topic into the DLQ."""


def limit_stops_consumer(window: Sequence[tuple[str | None, bool]], limit: int, tenants_seen: int) -> bool:
    """Whether the poison in ``window`` ((tenant, poisoned) per message) must stop the consumer.

    Over ``limit`` poisoned messages stop it when they come from two or more tenants (a message
    without a readable tenant counts as a tenant of its own) or when the consumer has seen only
    one tenant since it started (``tenants_seen``): then a bad release and one tenant's bad data
    look the same. Poison of one tenant while other tenants are served is that tenant's own.
    """
    poisoned = [tenant for tenant, bad in window if bad]
    if len(poisoned) <= limit:
        return False
    return len(set(poisoned)) >= 2 or tenants_seen <= 1


class RetryDeadlineExceeded(RuntimeError):
    """A transient failure outlasted the retry deadline; the process should exit and restart."""


class PermanentFailure(Exception):
    """The handler failed for good on these messages (raised by the retry path, split by the caller)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(describe(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Culprit(Generic[MessageT]):
    """A message that fails on its own, and why; ``tenant_wide`` when its whole tenant fails alike."""

    message: MessageT
    reason: str
    tenant_wide: bool = False


@dataclass(slots=True)
class Isolated(Generic[MessageT]):
    """What isolating a batch found: messages that fail alone, and whether it stopped early."""

    failed: list[Culprit[MessageT]]
    calls: int = 0
    gave_up: bool = False

    @property
    def counted(self) -> int:
        """Culprits that count toward the DLQ limit (not those refused with their whole tenant)."""
        return sum(1 for culprit in self.failed if not culprit.tenant_wide)


async def isolate_failures(
    messages: Sequence[MessageT],
    call: Callable[[Sequence[MessageT]], Awaitable[None]],
    error: PermanentFailure,
    *,
    budget: int,
    tenant_of: Callable[[MessageT], str] | None = None,
) -> Isolated[MessageT]:
    """Split ``messages`` (on which ``call`` failed with ``error``) until the failing ones stand alone.

    ``call`` handles a sub-batch completely (its own retries included) or raises
    :class:`PermanentFailure`. Halves are handled in order, left first, so a partition's
    messages keep their order. With ``k`` failing messages among ``n`` this makes about
    ``2 k log2(n / k)`` calls. A failure that names a tenant (see
    :func:`~libs.common.kafka.failures.tenant_scope`) takes all of that tenant's messages of
    the part out at once (with ``tenant_of``) and the rest is called again. Once more than
    ``budget`` counted messages failed it stops (``gave_up``): the DLQ limit is about to stop
    the consumer anyway.
    """
    found: Isolated[MessageT] = Isolated([])
    # Depth-first over halves with an explicit stack (no recursion): left halves pop first.
    stack: list[tuple[Sequence[MessageT], PermanentFailure | None]] = [(messages, error)]
    while stack:
        part, failure = stack.pop()
        if failure is None:
            try:
                found.calls += 1
                await call(part)
                continue
            except PermanentFailure as exc:
                failure = exc
        rest = _without_failing_tenant(part, failure, tenant_of, found)
        if rest is not None:
            if rest:
                stack.append((rest, None))
        elif len(part) == 1:
            found.failed.append(Culprit(part[0], str(failure)))
            if found.counted > budget:
                found.gave_up = True
                return found
        else:
            middle = len(part) // 2
            stack.append((part[middle:], None))
            stack.append((part[:middle], None))
    return found


def _without_failing_tenant(
    part: Sequence[MessageT],
    failure: PermanentFailure,
    tenant_of: Callable[[MessageT], str] | None,
    found: Isolated[MessageT],
) -> list[MessageT] | None:
    """The part without the tenant the failure names (its messages recorded), or None."""
    tenant = tenant_scope(failure.error) if tenant_of is not None else None
    if tenant is None or tenant_of is None:
        return None
    theirs = [m for m in part if tenant_of(m) == tenant]
    if not theirs:
        return None
    found.failed += [Culprit(m, str(failure), tenant_wide=True) for m in theirs]
    return [m for m in part if tenant_of(m) != tenant]


@dataclass(slots=True)
class _Raw:
    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    #: Milliseconds since the epoch (the producer's CreateTime), or -1 when unknown.
    timestamp: int = -1
    #: Decoded ahead (:meth:`ConsumerRunner._read_ahead`): the message, or why it is poison.
    decoded: ConsumedMessage[Any] | str | None = None


#: Messages decoded in one go by the read-ahead before it lets the handler run again.
_DECODE_CHUNK = 100


@dataclass(slots=True)
class _Fetched:
    """A batch read (and maybe decoded) ahead, with the assignment generation it was read in."""

    batch: list[_Raw]
    generation: int


def _tenant_header(raw: _Raw) -> str | None:
    """The ``ce_tenant`` header of a raw message, None when absent or unreadable."""
    for name, value in raw.headers:
        if name == "ce_tenant":
            try:
                return value.decode()
            except (UnicodeDecodeError, AttributeError):
                return None
    return None


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # A batch read before the new assignment is not handled: it reads from the commits.
        self._runner.generation += 1
        self._runner.rebalancing = True
        # Waits for the batch in hand, so the next owner starts after our last durable offset.
        async with self._runner.processing:
            await self._runner.commit_pending(only=revoked)
        self._runner.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._runner.generation += 1
        self._runner.rebalancing = False
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
        lanes: Lanes | None = None,
    ) -> None:
        if lanes is not None and lanes.count > 1 and lanes.min_part > policy.max_batch_size:
            # No batch could ever be split: each is handled whole, as with one lane (a deployment
            # that lowered its batch size keeps starting on upgrade).
            log.warning(
                "lanes off: min_part %d is over CONSUMER_MAX_BATCH_SIZE %d, each batch handled whole",
                lanes.min_part,
                policy.max_batch_size,
            )
            lanes = None
        self.service = service
        self.lanes = lanes
        self.group_id = group_id
        self.topics = tuple(topics)
        self.handler = handler
        self.kafka = kafka
        self.policy = policy
        self.producer = producer
        self.processing = asyncio.Lock()
        #: Moves at each rebalance: aiokafka then reads every assigned partition again from its
        #: committed offset, so a batch fetched in an earlier generation is dropped, not handled.
        self.generation = 0
        #: Between a revocation and the next assignment: what a fetch returns then is not handled.
        self.rebalancing = False
        self._by_physical = {t.physical(kafka.topic_prefix): t for t in self.topics}
        self._pending: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        #: (tenant, poisoned) of the last ``dlq_window_messages`` messages, for the DLQ limit.
        self._recent_poison: deque[tuple[str | None, bool]] = deque(maxlen=policy.dlq_window_messages)
        #: Up to two distinct tenants seen since start: enough to tell one tenant's poison apart.
        self._tenants_seen: set[str | None] = set()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        #: When each handler call now retrying a transient failure started failing.
        self._retrying: dict[int, float] = {}
        #: Handler calls that paused the assignment while retrying (resumed when none is left).
        self._pausing = 0
        #: Per partition: (offset, timestamp) of the first fetched message not yet processed.
        self._in_hand: dict[TopicPartition, tuple[int, int]] = {}
        #: Per partition: (next offset, timestamp of the last message) once something was processed.
        self._processed: dict[TopicPartition, tuple[int, int]] = {}
        self.started = asyncio.Event()

    def stop(self) -> None:
        """Ask the runner to finish the batch in hand, commit and leave the group."""
        self._stopping.set()

    def retrying_for(self) -> float:
        """Seconds the current transient failure has been retried; 0 when nothing is failing."""
        if not self._retrying:
            return 0.0
        return time.monotonic() - min(self._retrying.values())

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop the progress of partitions this member no longer owns (their gauges included)."""
        for tp in partitions:
            self._in_hand.pop(tp, None)
            self._processed.pop(tp, None)
            labels = (self.service, self._logical(tp), str(tp.partition))
            for gauge in (CONSUMER_LAG, CONSUMER_OLDEST_AGE):
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=self.group_id,
            client_id=f"{self.kafka.client_id}-{self.service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.policy.max_batch_size,
            fetch_max_wait_ms=self.policy.fetch_max_wait_ms,
            session_timeout_ms=self.policy.session_timeout_ms,
            # aiokafka's 3 s, or a third of a shorter session (the test suite's) so that one late
            # heartbeat does not end it.
            heartbeat_interval_ms=min(3_000, self.policy.session_timeout_ms // 3),
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
        # Exported from the start, not from the first progress tick: a scrape in between reads 0, not no data.
        CONSUMER_RETRYING_SECONDS.labels(self.service).set(0)
        reporter = asyncio.create_task(self._report_progress_forever(consumer))
        ahead: asyncio.Task[_Fetched] | None = None
        try:
            while not self._stopping.is_set():
                polled = time.perf_counter()
                fetched = await (ahead or self._fetch(consumer))
                ahead = None
                batch = self._current(consumer, fetched)
                self._phase("fetch" if batch else "idle", time.perf_counter() - polled)
                if batch:
                    if self.policy.read_ahead:
                        ahead = asyncio.create_task(self._read_ahead(consumer))
                    async with self.processing:
                        await self._process_in_lanes(consumer, batch)
                if self._commit_due():
                    async with self.processing:
                        committing = time.perf_counter()
                        await self.commit_pending()
                        self._phase("offsets", time.perf_counter() - committing)
            async with self.processing:
                await self.commit_pending()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            if ahead is not None:
                # Its batch is never handled; its own failure must not hide the one raised here.
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ahead
            self.forget(set(self._in_hand) | set(self._processed))
            CONSUMER_RETRYING_SECONDS.labels(self.service).set(0)
            self._consumer = None
            await consumer.stop()

    async def _fetch(self, consumer: AIOKafkaConsumer) -> _Fetched:
        batch = await self._poll(consumer)
        # Read before any other await: a rebalance after this point shows as a new generation.
        return _Fetched(batch, self.generation)

    async def _read_ahead(self, consumer: AIOKafkaConsumer) -> _Fetched:
        """The next batch, fetched and decoded while the handler awaits PostgreSQL and the broker
        for this one; decoded a chunk at a time so the handler is never held up long."""
        fetched = await self._fetch(consumer)
        for start in range(0, len(fetched.batch), _DECODE_CHUNK):
            await asyncio.sleep(0)
            with collector_paused():
                for raw in fetched.batch[start : start + _DECODE_CHUNK]:
                    try:
                        raw.decoded = self._decode(raw)
                    except InvalidMessage as exc:
                        raw.decoded = str(exc)
        return fetched

    def _current(self, consumer: AIOKafkaConsumer, fetched: _Fetched) -> list[_Raw]:
        """The fetched batch, unless a rebalance came after it was read (then it is read again from
        the committed offsets); its partitions' first offsets become the ones in hand."""
        if fetched.generation != self.generation or self.rebalancing:
            log.info("batch read before a rebalance dropped", extra={"messages": len(fetched.batch)})
            return []
        for raw in fetched.batch:
            if raw.tp not in self._in_hand:
                self._in_hand[raw.tp] = (raw.offset, raw.timestamp)
        return fetched.batch

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
        records = await self._top_up(consumer, fetch.result())
        out: list[_Raw] = []
        for tp, messages in records.items():
            for m in messages:
                out.append(_Raw(tp, m.offset, m.key, m.value, list(m.headers or ()), m.timestamp))
        return out

    def _lane_of(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int]:
        """The lane of each assigned partition of the lanes' topics (none when lanes are off)."""
        lanes = self.lanes
        if lanes is None or lanes.count <= 1:
            return {}
        ours = sorted(
            (tp for tp in assigned if self._by_physical.get(tp.topic) in lanes.topics),
            key=lambda tp: (tp.topic, tp.partition),
        )
        return {tp: i % lanes.count for i, tp in enumerate(ours)}

    def _parts(self, consumer: AIOKafkaConsumer, batch: list[_Raw]) -> list[list[_Raw]]:
        """``batch`` split by lane (each partition whole, in its order), or ``[batch]`` when lanes
        are off, it holds a partition outside them, or a part would be small (``Lanes.min_part``):
        it is split only into two parts or more, each of at least ``min_part`` messages."""
        lane_of = self._lane_of(consumer.assignment())
        if self.lanes is None or not lane_of or any(raw.tp not in lane_of for raw in batch):
            return [batch]
        parts: dict[int, list[_Raw]] = {}
        for raw in batch:
            parts.setdefault(lane_of[raw.tp], []).append(raw)
        if len(parts) < 2 or any(len(part) < self.lanes.min_part for part in parts.values()):
            return [batch]
        return list(parts.values())

    async def _top_up(
        self, consumer: AIOKafkaConsumer, records: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, list[Any]]:
        """With lanes, each lane's part may hold up to ``max_batch_size`` messages: the fetch
        drains one partition before the next, so the lanes the first read left short are topped
        up from what the client already holds (no wait). Only when the batch will be split
        (:meth:`_parts`): each lane holding messages is first brought to ``min_part``; when one
        stays short, what this took is given back (``seek``) and the first read is handled as it
        is, never more than ``max_batch_size``. Not when a partition outside the lanes is in
        hand: that batch is handled whole."""
        lane_of = self._lane_of(consumer.assignment())
        in_hand = [tp for tp, messages in records.items() if messages]
        if self.lanes is None or not lane_of or not in_hand or any(tp not in lane_of for tp in in_hand):
            return records
        min_part = self.lanes.min_part
        out = {tp: list(messages) for tp, messages in records.items()}
        taken: dict[TopicPartition, int] = {}  # the first offset the top-up took, per partition
        await self._top_up_lanes(consumer, lane_of, out, taken, lambda held: min_part)
        held = self._held(lane_of, out)
        # A lane still short gives back what it took; the batch is split if no lane is left short.
        self._give_back(
            consumer, out, taken, {tp for tp, lane in lane_of.items() if 0 < held[lane] < min_part}
        )
        held = self._held(lane_of, out)
        if sum(1 for n in held if n) < 2 or any(0 < n < min_part for n in held):
            self._give_back(consumer, out, taken, set(taken))  # handled whole: the first read alone
            return out
        await self._top_up_lanes(
            consumer, lane_of, out, taken, lambda held: self.policy.max_batch_size if held else 0
        )
        return out

    @staticmethod
    def _give_back(
        consumer: AIOKafkaConsumer,
        out: dict[TopicPartition, list[Any]],
        taken: dict[TopicPartition, int],
        partitions: set[TopicPartition],
    ) -> None:
        """What the top-up took of ``partitions`` put back: read again by the next poll."""
        for tp in partitions:
            offset = taken.pop(tp, None)
            if offset is not None:
                consumer.seek(tp, offset)
                out[tp] = [m for m in out[tp] if m.offset < offset]

    @staticmethod
    def _held(lane_of: dict[TopicPartition, int], records: dict[TopicPartition, list[Any]]) -> list[int]:
        held = [0] * (max(lane_of.values()) + 1)
        for tp, messages in records.items():
            held[lane_of[tp]] += len(messages)
        return held

    async def _top_up_lanes(
        self,
        consumer: AIOKafkaConsumer,
        lane_of: dict[TopicPartition, int],
        out: dict[TopicPartition, list[Any]],
        taken: dict[TopicPartition, int],
        target: Callable[[int], int],
    ) -> None:
        """Each lane brought towards ``target(held)`` messages from what the client holds."""
        for lane, held in enumerate(self._held(lane_of, out)):
            room = target(held) - held
            if room <= 0:
                continue
            partitions = [tp for tp, of in lane_of.items() if of == lane]
            for tp, messages in (await consumer.getmany(*partitions, timeout_ms=0, max_records=room)).items():
                if messages:
                    taken.setdefault(tp, messages[0].offset)
                out.setdefault(tp, []).extend(messages)

    async def _process_in_lanes(self, consumer: AIOKafkaConsumer, batch: list[_Raw]) -> None:
        """The batch's parts (:meth:`_parts`) handled concurrently; the first failure raised once
        every part has finished, after committing what is durable (:meth:`_commit_durable`)."""
        parts = self._parts(consumer, batch)
        try:
            if len(parts) == 1:
                await self._process(consumer, batch)
                return
            results = await asyncio.gather(
                *(self._process(consumer, part) for part in parts), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            # A part stopped by the DLQ limit wins: nothing is committed, whatever the others raised.
            if failures:
                raise next((f for f in failures if isinstance(f, DlqLimitExceeded)), failures[0])
        except DlqLimitExceeded:
            raise  # it stops without committing: the DLQ and the last deploy are looked at first
        except Exception:
            await self._commit_durable()
            raise

    async def _commit_durable(self) -> None:
        """Before a failure stops the consumer: commit the offsets of what was handled (earlier
        batches, the parts beside the failing one), so a restart re-reads only the failing part
        and what followed it. The failing part was never advanced. Best effort: the broker may be
        what failed."""
        try:
            await asyncio.wait_for(self.commit_pending(), self.kafka.request_timeout_ms / 1000)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("could not commit what was handled before the failure", extra={"error": repr(exc)})

    async def _process(self, consumer: AIOKafkaConsumer, batch: list[_Raw]) -> None:
        # A rebalance may have revoked partitions between the fetch and taking the lock:
        # their new owner re-reads them, so we drop ours rather than commit for them.
        owned = consumer.assignment()
        batch = [raw for raw in batch if raw.tp in owned]
        if not batch:
            return
        started = time.monotonic()
        decoded: list[ConsumedMessage[Any]] = []
        poison: list[tuple[_Raw, str]] = []
        with collector_paused():
            for raw in batch:
                message = raw.decoded
                if message is None:
                    try:
                        message = self._decode(raw)
                    except InvalidMessage as exc:
                        message = str(exc)
                if isinstance(message, str):
                    poison.append((raw, message))
                else:
                    decoded.append(message)
                self._note_tenant(_tenant_header(raw))
        handling = time.monotonic()
        self._phase("decode", handling - started)
        with tallying() as waits:
            rejected = (
                await self._handle_isolating(consumer, decoded, self._isolation_budget(poison))
                if decoded
                else []
            )
        self._observe_handler(time.monotonic() - handling, waits)
        tenant_wide: list[tuple[_Raw, str]] = []
        refused = {id(r.message) for r in rejected}
        self._recent_poison.extend((m.envelope.tenant, False) for m in decoded if id(m) not in refused)
        for r in rejected:
            raw = self._raw_of(batch, r.message, self.kafka.topic_prefix)
            # One tenant's unusable settings are its own data, not a broken release: counting
            # them would stop the consumer for every tenant, the shared fate isolation avoids.
            (tenant_wide if r.tenant_wide else poison).append((raw, r.reason))
            if r.tenant_wide:
                self._recent_poison.append((r.message.envelope.tenant, False))
        for raw, reason in poison:
            # Checked before each send, so a bad batch cannot push more than the limit to the DLQ.
            self._recent_poison.append((_tenant_header(raw), True))
            if limit_stops_consumer(self._recent_poison, self.policy.dlq_limit, len(self._tenants_seen)):
                raise DlqLimitExceeded(
                    f"more than {self.policy.dlq_limit} poison messages within the last "
                    f"{len(self._recent_poison)}: stopping without committing; inspect the DLQ and the last deploy"
                )
            await self._dead_letter(raw, reason)
        for raw, reason in tenant_wide:
            await self._dead_letter(raw, reason)
        self._advance(consumer, batch)
        CONSUMER_BATCH_SECONDS.labels(self.service).observe(time.monotonic() - started)
        # Counted per topic first: ``labels().inc()`` costs about 1.5 us, paid per topic of a batch, not per message.
        for topic_name, count in Counter(message.topic.name for message in decoded).items():
            CONSUMER_MESSAGES.labels(self.service, topic_name, "processed").inc(count)
        if log.isEnabledFor(logging.DEBUG):
            self._log_batch(batch, decoded)

    def _phase(self, phase: str, seconds: float) -> None:
        CONSUMER_PHASE_SECONDS.labels(self.service, phase).observe(seconds)

    def _observe_handler(self, seconds: float, waits: BatchTally) -> None:
        """The handler call's time, and what inside it waited on PostgreSQL and the broker."""
        self._phase("handler", seconds)
        for phase, waited in waits.seconds.items():
            self._phase(phase, waited)
        CONSUMER_ROUND_TRIPS.labels(self.service).observe(waits.counts.get("statements", 0))

    def _note_tenant(self, tenant: str | None) -> None:
        if len(self._tenants_seen) < 2:
            self._tenants_seen.add(tenant)

    def _isolation_budget(self, poison: Sequence[tuple[_Raw, str]]) -> int:
        """How many culprits isolating may find before giving up (the limit is about to stop us).

        With two tenants seen, one tenant's poison does not stop the consumer, so isolating
        never gives up early; the limit is then applied to what it found.
        """
        if len(self._tenants_seen) >= 2:
            return self.policy.dlq_window_messages
        counted = sum(1 for _, bad in self._recent_poison if bad)
        return max(0, self.policy.dlq_limit - counted - len(poison))

    def _advance(self, consumer: AIOKafkaConsumer, batch: list[_Raw]) -> None:
        """The batch is done: its offsets become committable and the partitions' progress moves."""
        for raw in batch:
            current = self._pending.get(raw.tp, -1)
            self._pending[raw.tp] = max(current, raw.offset + 1)
            done = self._processed.get(raw.tp, (-1, -1))
            if raw.offset + 1 > done[0]:
                self._processed[raw.tp] = (raw.offset + 1, raw.timestamp)
        for tp in {raw.tp for raw in batch}:
            self._in_hand.pop(tp, None)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self._set_progress(tp, highwater, time.time())

    def _set_progress(self, tp: TopicPartition, end: int, now: float) -> None:
        """Lag and the age of the oldest message not processed yet, from the partition's end offset."""
        labels = (self.service, self._logical(tp), str(tp.partition))
        in_hand = self._in_hand.get(tp)
        processed = self._processed.get(tp)
        if in_hand is not None:
            position, timestamp = in_hand
        elif processed is not None:
            position, timestamp = processed
        else:
            return
        lag = max(0, end - position)
        CONSUMER_LAG.labels(*labels).set(lag)
        # With nothing in hand, the next message is at most as old as the last one processed.
        age = now - timestamp / 1000 if (in_hand is not None or lag > 0) and timestamp >= 0 else 0.0
        CONSUMER_OLDEST_AGE.labels(*labels).set(max(0.0, age))

    async def _report_progress_forever(self, consumer: AIOKafkaConsumer) -> None:
        # Runs beside the poll loop, so the gauges move while a batch is stuck in retries.
        while True:
            await asyncio.sleep(self.policy.progress_interval_ms / 1000)
            try:
                await self.report_progress(consumer)
            except (KafkaError, OSError, IllegalStateError) as exc:
                # The broker is away or the group rebalancing: the next tick tries again.
                log.debug("could not read end offsets", extra={"error": repr(exc)})
            except Exception:
                log.exception("progress report failed; retried next tick")

    async def report_progress(self, consumer: AIOKafkaConsumer) -> None:
        """Set the lag and oldest-message gauges of every assigned partition from its end offset."""
        CONSUMER_RETRYING_SECONDS.labels(self.service).set(self.retrying_for())
        assigned = consumer.assignment()
        if not assigned:
            return
        ends: dict[TopicPartition, int] = await asyncio.wait_for(
            consumer.end_offsets(list(assigned)), self.kafka.request_timeout_ms / 1000
        )
        now = time.time()
        for tp in assigned:
            if tp not in self._in_hand and tp not in self._processed:
                # Nothing read since the assignment: the fetch position is where we stand.
                with contextlib.suppress(TimeoutError, IllegalStateError):
                    self._processed[tp] = (await asyncio.wait_for(consumer.position(tp), 1.0), -1)
            # ListOffsets can trail the fetch high watermark on some brokers: take the larger.
            end = max(ends.get(tp, 0), consumer.highwater(tp) or 0)
            self._set_progress(tp, end, now)

    def _log_batch(self, batch: list[_Raw], decoded: list[ConsumedMessage[Any]]) -> None:
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
    def _raw_of(batch: list[_Raw], message: ConsumedMessage[Any], prefix: str) -> _Raw:
        for raw in batch:
            if (
                raw.tp.partition == message.partition
                and raw.offset == message.offset
                and (raw.tp.topic == message.topic.physical(prefix))
            ):
                return raw
        raise LookupError("rejected message is not in the batch")

    def _logical(self, tp: TopicPartition) -> str:
        topic = self._by_physical.get(tp.topic)
        return topic.name if topic else tp.topic

    def _decode(self, raw: _Raw) -> ConsumedMessage[Any]:
        topic = self._by_physical[raw.tp.topic]
        envelope = Envelope.from_headers(raw.headers)
        payload = topic.decode_as(envelope.type, raw.value)
        check_tenant(envelope, payload)
        return ConsumedMessage(topic, raw.tp.partition, raw.offset, raw.key, envelope, payload)

    async def _handle_isolating(
        self, consumer: AIOKafkaConsumer, decoded: list[ConsumedMessage[Any]], budget: int
    ) -> list[Rejected]:
        """Handle the batch; on a permanent failure, split it until the culprits stand alone."""
        rejected: list[Rejected] = []

        async def call(part: Sequence[ConsumedMessage[Any]]) -> None:
            rejected.extend(await self._handle_with_retry(consumer, part))

        try:
            await call(decoded)
            return rejected
        except PermanentFailure as failure:
            log.warning(
                "batch failed permanently, isolating the culprits",
                extra={"error": str(failure), "messages": len(decoded)},
            )
            found = await isolate_failures(
                decoded, call, failure, budget=budget, tenant_of=lambda m: m.envelope.tenant
            )
        CONSUMER_ISOLATION_CALLS.labels(self.service).inc(found.calls)
        return rejected + [Rejected(c.message, c.reason, c.tenant_wide) for c in found.failed]

    async def _handle_with_retry(
        self, consumer: AIOKafkaConsumer, decoded: Sequence[ConsumedMessage[Any]]
    ) -> Sequence[Rejected]:
        """Call the handler; retry transient failures with backoff, raise :class:`PermanentFailure`."""
        backoff = self.policy.retry_initial_backoff_ms / 1000
        deadline = time.monotonic() + self.policy.retry_deadline_ms / 1000
        call = id(decoded)
        paused = False
        try:
            while True:
                try:
                    with collector_paused():
                        result = await self.handler(decoded)
                    if self._retrying.pop(call, None) is not None and not self._retrying:
                        # Cleared at once, not at the next progress tick: the episode is over.
                        CONSUMER_RETRYING_SECONDS.labels(self.service).set(0)
                    return result
                except Exception as exc:
                    if not is_transient(exc):
                        self._retrying.pop(call, None)
                        raise PermanentFailure(exc) from exc
                    if time.monotonic() + backoff > deadline:
                        raise RetryDeadlineExceeded(
                            f"batch of {len(decoded)} still failing after {self.policy.retry_deadline_ms} ms"
                        ) from exc
                    self._retrying.setdefault(call, time.monotonic())
                    log.warning(
                        "batch failed, retrying: %r",
                        exc,
                        extra={"error": repr(exc), "backoff_seconds": backoff, "messages": len(decoded)},
                    )
                    for message in decoded:
                        CONSUMER_MESSAGES.labels(self.service, message.topic.name, "retried").inc()
                    if not paused:
                        # Stop fetching while we cannot make progress; the group membership stays alive.
                        paused = True
                        self._pausing += 1
                        consumer.pause(*consumer.assignment())
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.policy.retry_max_backoff_ms / 1000)
        finally:
            if paused:
                self._pausing -= 1
                if not self._pausing:
                    # Another lane still retrying keeps the assignment paused.
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
