"""The runner classifies handler failures and isolates permanent ones by splitting the batch.

Transient failures (lost connections, timeouts, serialization failures, deadlocks) are retried;
everything else repeats for the same input, so the failing messages are found by bisection and
dead-lettered while the rest of the batch is handled. The figures below are exact handler-call
counts: isolating one bad message among ``n`` costs ``2 log2(n)`` calls, never a restart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi as Dbapi

from libs.common.contracts.envelope import Envelope, InvalidMessage
from libs.common.kafka.failures import PermanentError, TenantSettingsInvalid, describe, is_transient
from libs.common.kafka.runner import (
    ConsumedMessage,
    ConsumerRunner,
    PermanentFailure,
    Rejected,
    RetryDeadlineExceeded,
    isolate_failures,
    limit_stops_consumer,
)
from libs.common.settings import ConsumerSettings, KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED

# --- classification ---------------------------------------------------------------------------


def wrapped(driver_error: Exception, adapted: type[Exception] = Dbapi.Error, **kw: Any) -> Exception:
    """A driver error as SQLAlchemy raises it from an asyncpg connection (statement and parameters)."""
    error = sa_exc.DBAPIError.instance(
        "INSERT INTO activities VALUES ($1)",
        ("x",),
        adapted(str(driver_error), driver_error),
        Dbapi.Error,
        **kw,
    )
    assert isinstance(error, Exception)
    return error


class Strict(BaseModel):
    duration_seconds: int


def validation_error() -> ValidationError:
    try:
        Strict.model_validate({"duration_seconds": "thirty"})
    except ValidationError as exc:
        return exc
    raise AssertionError("validated")


def chained(outer: Exception, cause: Exception) -> Exception:
    outer.__cause__ = cause
    return outer


TRANSIENT = [
    ("serialization failure 40001", wrapped(asyncpg.exceptions.SerializationError("could not serialize"))),
    ("deadlock 40P01", wrapped(asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))),
    (
        "connection gone 08003",
        wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("closed mid-operation")),
    ),
    ("connection failure 08006", wrapped(asyncpg.exceptions.ConnectionFailureError("broken"))),
    ("admin shutdown 57P01", wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection"))),
    ("cannot connect now 57P03", wrapped(asyncpg.exceptions.CannotConnectNowError("starting up"))),
    ("too many connections 53300", wrapped(asyncpg.exceptions.TooManyConnectionsError("sorry"))),
    ("bare asyncpg deadlock", asyncpg.exceptions.DeadlockDetectedError("deadlock detected")),
    (
        "connection_invalidated",
        wrapped(Exception("connection is closed"), Dbapi.InterfaceError, connection_invalidated=True),
    ),
    ("pool timeout", sa_exc.TimeoutError("QueuePool limit reached")),
    ("asyncio.TimeoutError (the builtin since 3.11)", TimeoutError()),
    ("ConnectionRefusedError", ConnectionRefusedError(111, "refused")),
    ("OSError", OSError("broken pipe")),
    ("Kafka connection", KafkaConnectionError("no broker")),
    ("Kafka timeout", KafkaTimeoutError()),
    ("wrapped OSError", chained(RuntimeError("publish failed"), OSError("reset by peer"))),
]

PERMANENT = [
    ("NUL byte 22021", wrapped(asyncpg.exceptions.CharacterNotInRepertoireError("0x00"), Dbapi.DataError)),
    (
        "untranslatable 22P05",
        wrapped(asyncpg.exceptions.UntranslatableCharacterError("\\u0000"), Dbapi.DataError),
    ),
    ("date out of range 22008", wrapped(asyncpg.exceptions.DatetimeFieldOverflowError("out of range"))),
    ("numeric out of range 22003", wrapped(asyncpg.exceptions.NumericValueOutOfRangeError("bigint"))),
    ("unique violation 23505", wrapped(asyncpg.exceptions.UniqueViolationError("dup"), Dbapi.IntegrityError)),
    ("check violation 23514", wrapped(asyncpg.exceptions.CheckViolationError("check"), Dbapi.IntegrityError)),
    ("client-side encoding error", wrapped(asyncpg.exceptions.DataError("invalid input for query argument"))),
    ("pydantic ValidationError", validation_error()),
    ("ValueError", ValueError("bad")),
    ("TypeError", TypeError("bad")),
    ("KeyError", KeyError("missing")),
    ("OverflowError", OverflowError("date value out of range")),
    ("PermanentError", PermanentError("no")),
    ("tenant settings", TenantSettingsInvalid("acme", "attribution.ambiguity_policy", "'x' is not valid")),
    ("InvalidMessage", InvalidMessage("bad body")),
    ("message too large to publish", MessageSizeTooLargeError()),
    ("permanent wrapping an OSError", chained(PermanentError("explicit"), OSError("ignored"))),
]


@pytest.mark.parametrize(("name", "error"), TRANSIENT, ids=[n for n, _ in TRANSIENT])
def test_transient_failures_are_retried(name: str, error: Exception) -> None:
    assert is_transient(error), name


@pytest.mark.parametrize(("name", "error"), PERMANENT, ids=[n for n, _ in PERMANENT])
def test_failures_that_repeat_for_the_same_input_are_permanent(name: str, error: Exception) -> None:
    assert not is_transient(error), name


def test_a_validation_error_names_its_fields() -> None:
    assert describe(validation_error()) == (
        "ValidationError: duration_seconds: Input should be a valid integer, unable to parse string as an integer"
    )


def test_the_dlq_reason_is_the_drivers_message_without_sql_or_parameters() -> None:
    error = wrapped(
        asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        Dbapi.DataError,
    )
    assert describe(error) == (
        'CharacterNotInRepertoireError (SQLSTATE 22021): invalid byte sequence for encoding "UTF8": 0x00'
    )
    assert describe(
        TenantSettingsInvalid("acme", "attribution.min_confidence", "'high' is not a number")
    ) == (
        "TenantSettingsInvalid: tenant acme: settings invalid at attribution.min_confidence: "
        "'high' is not a number"
    )


# --- bisection --------------------------------------------------------------------------------


class Item(BaseModel):
    n: int


def message(n: int, tenant: str = "acme") -> ConsumedMessage[Item]:
    envelope = Envelope(
        id=f"e-{n}",
        source="/tests",
        type=ACTIVITY_INGESTED.event_type,
        subject=str(n),
        tenant=tenant,
        time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return ConsumedMessage(ACTIVITY_INGESTED, 0, n, None, envelope, Item(n=n))


class Handler:
    """All-or-nothing per call, like the services' handlers: a call with a bad message fails whole."""

    def __init__(
        self, bad: set[int], transient_failures: int = 0, misconfigured: str = "", data_first: bool = False
    ) -> None:
        self.bad = bad
        self.misconfigured = misconfigured
        #: Check the data before the tenant's settings (as attribution stores before it attributes).
        self.data_first = data_first
        self.calls = 0
        self.handled: list[int] = []
        self.transient_failures = transient_failures

    async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        self.calls += 1
        if self.transient_failures and len(messages) < 8:
            # The database blips in the middle of the split.
            self.transient_failures -= 1
            raise wrapped(asyncpg.exceptions.SerializationError("could not serialize"))
        if not self.data_first:
            self._check_settings(messages)
        culprits = [m.payload.n for m in messages if m.payload.n in self.bad]
        if culprits:
            raise wrapped(
                asyncpg.exceptions.CharacterNotInRepertoireError(f"0x00 in message {culprits[0]}"),
                Dbapi.DataError,
            )
        self._check_settings(messages)
        self.handled += [m.payload.n for m in messages]
        return []

    def _check_settings(self, messages: Sequence[ConsumedMessage[Any]]) -> None:
        if any(m.envelope.tenant == self.misconfigured for m in messages):
            raise TenantSettingsInvalid(
                self.misconfigured, "attribution.min_confidence", "'high': not a number"
            )


class Consumer:
    """The part of AIOKafkaConsumer the retry path uses."""

    def __init__(self) -> None:
        self.paused = 0

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", 0)}

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused += 1

    def resume(self, *partitions: TopicPartition) -> None:
        pass


def runner(handler: Handler, **policy: Any) -> ConsumerRunner:
    return ConsumerRunner(
        service="tests",
        group_id="g",
        topics=[ACTIVITY_INGESTED],
        handler=handler,
        kafka=KafkaSettings(),
        policy=ConsumerSettings(retry_initial_backoff_ms=1, retry_max_backoff_ms=2, **policy),
        producer=cast(AIOKafkaProducer, None),
    )


async def isolate(size: int, bad: set[int], **policy: Any) -> tuple[Handler, list[Rejected]]:
    handler = Handler(bad)
    found = await runner(handler, **policy)._handle_isolating(
        cast(Any, Consumer()), [message(n) for n in range(size)], budget=1_000
    )
    return handler, found


@pytest.mark.parametrize(("size", "calls"), [(8, 7), (100, 15)])
async def test_one_bad_message_is_isolated_with_log_n_extra_calls(size: int, calls: int) -> None:
    handler, rejected = await isolate(size, {size // 3})
    assert [r.message.payload.n for r in rejected] == [size // 3]
    assert (
        rejected[0].reason == f"CharacterNotInRepertoireError (SQLSTATE 22021): 0x00 in message {size // 3}"
    )
    # Every other message handled exactly once, in order.
    assert handler.handled == [n for n in range(size) if n != size // 3]
    # The failed batch, then two halves per level down to the culprit: 1 + 2 * ceil(log2(n)).
    assert handler.calls == calls == 1 + 2 * math.ceil(math.log2(size))


@pytest.mark.parametrize(("size", "bad", "calls"), [(8, {1, 6}, 11), (100, {0, 99}, 25), (100, {41, 42}, 15)])
async def test_two_bad_messages_are_both_isolated(size: int, bad: set[int], calls: int) -> None:
    handler, rejected = await isolate(size, bad)
    assert sorted(r.message.payload.n for r in rejected) == sorted(bad)
    assert handler.handled == [n for n in range(size) if n not in bad]
    assert handler.calls == calls
    assert calls <= 1 + 2 * 2 * math.ceil(math.log2(size))


@pytest.mark.parametrize("size", [8, 100])
async def test_an_all_bad_batch_is_isolated_message_by_message(size: int) -> None:
    handler, rejected = await isolate(size, set(range(size)))
    assert [r.message.payload.n for r in rejected] == list(range(size))
    assert handler.handled == []
    # A full binary tree over the batch: 2n - 1 calls.
    assert handler.calls == 2 * size - 1


async def test_isolation_stops_once_the_batch_holds_more_poison_than_the_budget() -> None:
    handler = Handler(set(range(100)))
    found = await isolate_failures(
        [message(n) for n in range(100)],
        lambda part: _raise_if_bad(handler, part),
        PermanentFailure(ValueError("first call")),
        budget=3,
    )
    assert found.gave_up
    assert [c.message.payload.n for c in found.failed] == [0, 1, 2, 3]
    assert found.calls < 20


async def _raise_if_bad(handler: Handler, part: Sequence[ConsumedMessage[Any]]) -> None:
    try:
        await handler(part)
    except Exception as exc:
        raise PermanentFailure(exc) from exc


async def test_a_transient_failure_during_the_split_is_retried_not_dead_lettered() -> None:
    handler = Handler({5}, transient_failures=2)
    consumer = Consumer()
    rejected = await runner(handler)._handle_isolating(
        cast(Any, consumer), [message(n) for n in range(16)], budget=1_000
    )
    assert [r.message.payload.n for r in rejected] == [5]
    assert handler.handled == [n for n in range(16) if n != 5]
    assert consumer.paused == 1  # the retry path paused the partitions once


async def test_a_good_batch_costs_one_call_and_a_transient_failure_still_hits_the_deadline() -> None:
    handler, rejected = await isolate(100, set())
    assert (handler.calls, rejected) == (1, [])

    class Down(Handler):
        async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
            self.calls += 1
            raise ConnectionRefusedError(111, "database down")

    down = Down(set())
    with pytest.raises(RetryDeadlineExceeded):
        await runner(down, retry_deadline_ms=30)._handle_isolating(
            cast(Any, Consumer()), [message(n) for n in range(4)], budget=1_000
        )
    assert down.calls > 1


async def test_a_tenant_wide_failure_parks_that_tenants_messages_at_once_and_the_rest_is_bisected() -> None:
    handler = Handler({50}, misconfigured="globex")
    batch = [message(n, "globex" if n % 3 == 0 else "acme") for n in range(100)]
    rejected = await runner(handler)._handle_isolating(cast(Any, Consumer()), batch, budget=1_000)
    wide = [r for r in rejected if r.tenant_wide]
    assert [r.message.payload.n for r in wide] == list(range(0, 100, 3))
    assert {r.reason for r in wide} == {
        "TenantSettingsInvalid: tenant globex: settings invalid at attribution.min_confidence: 'high': not a number"
    }
    assert [(r.message.payload.n, r.tenant_wide) for r in rejected if not r.tenant_wide] == [(50, False)]
    assert handler.handled == [n for n in range(100) if n % 3 and n != 50]
    # The batch, the batch without globex (fails on 50), then two halves per level down to 50.
    assert handler.calls == 14
    assert handler.calls <= 2 + 2 * math.ceil(math.log2(66))


async def test_a_tenant_wide_failure_met_inside_a_half_is_parked_there_without_counting() -> None:
    handler = Handler({50}, misconfigured="globex", data_first=True)
    batch = [message(n, "globex" if n % 3 == 0 else "acme") for n in range(100)]
    rejected = await runner(handler)._handle_isolating(cast(Any, Consumer()), batch, budget=1)
    assert sorted(r.message.payload.n for r in rejected if r.tenant_wide) == list(range(0, 100, 3))
    assert [r.message.payload.n for r in rejected if not r.tenant_wide] == [50]
    assert handler.handled == [n for n in range(100) if n % 3 and n != 50]


def test_the_dlq_limit_stops_only_for_poison_of_two_tenants_or_a_single_tenant_installation() -> None:
    one_bad_tenant = [("x", True)] * 6 + [("y", False)] * 4
    assert not limit_stops_consumer(one_bad_tenant, limit=5, tenants_seen=2)
    # The same poison where nobody else was ever seen: a bad release looks the same.
    assert limit_stops_consumer([("x", True)] * 6, limit=5, tenants_seen=1)
    two_bad_tenants = [("x", True)] * 3 + [("y", True)] * 3
    assert limit_stops_consumer(two_bad_tenants, limit=5, tenants_seen=2)
    # A message without a readable tenant counts as a tenant of its own.
    assert limit_stops_consumer([("x", True)] * 5 + [(None, True)], limit=5, tenants_seen=2)
    # At the limit, never.
    assert not limit_stops_consumer([("x", True)] * 3 + [("y", True)] * 2, limit=5, tenants_seen=2)
