"""Poison messages reach the DLQ with provenance, the DLQ limit stops a consumer, and
``spm dlq inspect|replay`` bring dead letters back exactly once, within a replay cap."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.kafka.dlq import dlq_topic, inspect_dead_letters, replay_dead_letters
from libs.common.kafka.failures import TenantSettingsInvalid
from libs.common.kafka.runner import BatchHandler, ConsumedMessage, ConsumerRunner, DlqLimitExceeded, Rejected
from libs.common.settings import KafkaSettings
from libs.common.testing.stack import fast_consumer
from libs.common.topics import ACTIVITY_INGESTED
from tests.integration.polling import eventually

from .conftest import NOW, activity_message
from .poison_messages import call_message


async def read_all(settings: KafkaSettings, physical: str, expected: int) -> list[Any]:
    """Every message of a one-partition-or-more topic, waiting until ``expected`` arrived."""
    consumer = AIOKafkaConsumer(
        physical, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[Any] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out += messages
        # Nothing more than expected either.
        for messages in (await consumer.getmany(timeout_ms=500)).values():
            out += messages
    finally:
        await consumer.stop()
    return out


class Recorder:
    """A batch handler that keeps what it saw and rejects external ids starting with ``bad``."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        rejected = []
        for message in messages:
            payload: ActivityIngestedV1 = message.payload
            if payload.external_id.startswith("bad"):
                rejected.append(Rejected(message, "business rule: bad external id"))
            else:
                self.seen.append(payload.external_id)
        return rejected


def runner_for(
    settings: KafkaSettings, producer: AIOKafkaProducer, handler: BatchHandler, **policy: int
) -> ConsumerRunner:
    return ConsumerRunner(
        service="tests",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=[ACTIVITY_INGESTED],
        handler=handler,
        kafka=settings,
        policy=fast_consumer().model_copy(update=policy),
        producer=producer,
    )


async def run_until(runner: ConsumerRunner, done: Any, deadline_s: float = 60) -> None:
    task = asyncio.create_task(runner.run())

    async def reached() -> bool:
        return bool(done()) or task.done()

    try:
        await eventually(reached, bool, deadline_s, "the runner reaching the condition or stopping")
    finally:
        runner.stop()
        await task
    assert done(), "condition not met"


async def test_undecodable_and_invalid_messages_go_to_the_dlq_with_provenance(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    good, headers, key = activity_message("good-1")
    wrong_type = [(k, b"io.spm.something.else.v1" if k == "ce_type" else v) for k, v in headers]
    await producer.send_and_wait(topic, b"\xff\xfe not json", key=b"k", headers=headers, partition=0)
    await producer.send_and_wait(
        topic, orjson.dumps({"tenant_id": "acme"}), key=b"k", headers=headers, partition=0
    )
    await producer.send_and_wait(topic, good, key=key, headers=wrong_type, partition=0)
    await producer.send_and_wait(topic, activity_message("bad-1")[0], key=key, headers=headers, partition=0)
    await producer.send_and_wait(topic, good, key=key, headers=headers, partition=0)
    handler = Recorder()
    runner = runner_for(kafka_settings, producer, handler)
    await run_until(runner, lambda: handler.seen == ["good-1"])

    letters = await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=10)
    assert [letter.offset for letter in letters] == [0, 1, 2, 3]
    assert [letter.provenance["dlq_offset"] for letter in letters] == ["0", "1", "2", "3"]
    for letter in letters:
        assert letter.provenance["dlq_source_topic"] == topic
        assert letter.provenance["dlq_partition"] == "0"
        assert letter.provenance["dlq_service"] == "tests"
        assert letter.provenance["dlq_failed_at"] is not None
        assert letter.header("ce_tenant") == "acme"  # the original headers travel along
    errors = [letter.provenance["dlq_error"] or "" for letter in letters]
    assert "JSON" in errors[0] or "json" in errors[0]
    assert "activity_id" in errors[1]
    assert "unexpected event type 'io.spm.something.else.v1'" in errors[2]
    assert errors[3] == "business rule: bad external id"
    assert letters[0].value == b"\xff\xfe not json"


async def test_dlq_limit_stops_the_consumer_before_it_drains_the_topic(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    _, headers, _ = activity_message("x")
    for i in range(30):
        await producer.send(topic, f"garbage {i}".encode(), key=b"k", headers=headers, partition=0)
    await producer.flush()
    handler = Recorder()
    runner = runner_for(kafka_settings, producer, handler, dlq_limit=5, dlq_window_messages=50)
    with pytest.raises(DlqLimitExceeded):
        await asyncio.wait_for(runner.run(), 60)
    # Exactly the limit went to the DLQ; it stopped at the next one and committed nothing.
    letters = await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=100)
    assert [letter.provenance["dlq_offset"] for letter in letters] == ["0", "1", "2", "3", "4"]
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, group_id=runner.group_id)
    await consumer.start()
    try:
        assert await consumer.committed(TopicPartition(topic, 0)) is None
    finally:
        await consumer.stop()


async def test_one_tenants_poison_beyond_the_limit_goes_to_the_dlq_while_others_are_served(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    """The limit guards against a bad release (every tenant fails); one tenant's bad data
    (only that tenant fails) must not stop the consumer for the others."""
    topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    good = [activity_message(f"good-{i}", tenant="globex") for i in range(10)]
    bad = [activity_message(f"bad-{i}", tenant="acme") for i in range(30)]
    # Interleaved over two partitions, as two tenants' traffic arrives.
    for i, (value, headers, key) in enumerate(bad):
        await producer.send(topic, value, key=key, headers=headers, partition=i % 2)
        if i % 3 == 0 and good:
            value, headers, key = good.pop()
            await producer.send(topic, value, key=key, headers=headers, partition=(i + 1) % 2)
    for value, headers, key in good:
        await producer.send(topic, value, key=key, headers=headers, partition=1)
    await producer.flush()
    handler = Recorder()
    runner = runner_for(kafka_settings, producer, handler, dlq_limit=5, dlq_window_messages=50)
    await run_until(runner, lambda: len(handler.seen) == 10)
    letters = await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=100)
    assert len(letters) == 30
    assert {letter.header("ce_tenant") for letter in letters} == {"acme"}
    assert sorted(handler.seen) == sorted(f"good-{i}" for i in range(10))


async def test_poison_of_two_tenants_beyond_the_limit_stops_the_consumer(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    for i in range(20):
        value, headers, key = activity_message(f"bad-{i}", tenant="acme" if i % 2 else "globex")
        await producer.send(topic, value, key=key, headers=headers, partition=0)
    await producer.flush()
    runner = runner_for(kafka_settings, producer, Recorder(), dlq_limit=5, dlq_window_messages=50)
    with pytest.raises(DlqLimitExceeded):
        await asyncio.wait_for(runner.run(), 60)
    letters = await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=100)
    assert [letter.provenance["dlq_offset"] for letter in letters] == ["0", "1", "2", "3", "4"]


async def test_replay_republishes_once_commits_after_acks_and_caps_replays(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    for i in range(4):
        value, headers, key = activity_message(f"bad-{i}")
        await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    handler = Recorder()
    runner = runner_for(kafka_settings, producer, handler)

    async def dlq_count() -> int:
        return len(await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=1000))

    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: dlq_count(), 4)
        dry = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED, dry_run=True)
        assert (dry.seen, dry.replayed, len(dry.refused)) == (4, 4, 0)
        # A dry run committed nothing: the real replay sees the same four.
        partial = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED, max_messages=1)
        assert (partial.seen, partial.replayed) == (1, 1)
        # The consumer keeps failing it: the replayed letter comes back with one replay. Waiting
        # for it makes the next replay deterministic (three originals plus the returned one).
        await wait_until(lambda: dlq_count(), 5)
        rest = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED)
        assert (rest.seen, rest.replayed) == (4, 4)
        # Still failing: each comes back to the DLQ carrying its replay count.
        await wait_until(lambda: dlq_count(), 9)
        again = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED, max_replays=2)
        # Three letters have one replay and go again; the twice-replayed one is refused.
        assert (again.seen, again.replayed, len(again.refused)) == (4, 3, 1)
        await wait_until(lambda: dlq_count(), 12)
        capped = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED, max_replays=2)
        assert (capped.seen, capped.replayed, len(capped.refused)) == (3, 0, 3)
        assert {letter.replays for letter in capped.refused} == {2}
        nothing = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED)
        assert (nothing.seen, nothing.replayed) == (0, 0)
    finally:
        runner.stop()
        await task
    source = await read_all(kafka_settings, topic, 4 + 4 + 4)
    assert len(source) == 12
    # Replays land on the key's partition, so compare without order.
    replayed = [dict(m.headers) for m in source if "dlq_replays" in dict(m.headers)]
    assert sorted(h["dlq_replays"] for h in replayed) == [b"1"] * 4 + [b"2"] * 4
    assert all(not any(k.startswith("dlq_") and k != "dlq_replays" for k in h) for h in replayed)
    letters = await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=1000)
    # Re-dead-lettered messages arrive from both source partitions: their order is not fixed.
    assert sorted(letter.replays for letter in letters) == [0] * 4 + [1] * 4 + [2] * 4
    # The DLQ group committed exactly up to the end of what it handled.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers, group_id=f"{kafka_settings.client_id}-dlq-replay"
    )
    await consumer.start()
    try:
        dlq_tp = TopicPartition(ACTIVITY_INGESTED.physical_dlq(kafka_settings.topic_prefix), 0)
        assert await consumer.committed(dlq_tp) == 12
    finally:
        await consumer.stop()


async def wait_until(measure: Any, expected: int, deadline_s: float = 60) -> None:
    value = await eventually(measure, lambda got: got >= expected, deadline_s, f"reaching {expected}")
    assert value == expected


def spm(settings: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.topic_prefix,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "spm.cli", "dlq", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_spm_dlq_commands_inspect_and_replay(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    dlq = ACTIVITY_INGESTED.physical_dlq(kafka_settings.topic_prefix)
    source = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    for i in range(3):
        value, headers, key = activity_message(f"c-{i}")
        provenance = [
            ("dlq_source_topic", source.encode()),
            ("dlq_partition", b"1"),
            ("dlq_offset", str(40 + i).encode()),
            ("dlq_error", b"database said no"),
            ("dlq_service", b"attribution"),
            ("dlq_failed_at", NOW.isoformat().encode()),
        ]
        await producer.send_and_wait(dlq, value, key=key, headers=headers + provenance)

    shown = await asyncio.to_thread(
        spm, kafka_settings, "inspect", "--topic", "activity-ingested", "--limit", "2"
    )
    assert shown.returncode == 0, shown.stderr
    assert "2 shown" in shown.stdout
    assert f"{source}[1]@40" in shown.stdout
    assert f"{source}[1]@41" in shown.stdout
    assert "@42" not in shown.stdout
    assert "database said no" in shown.stdout

    dry = await asyncio.to_thread(spm, kafka_settings, "replay", "--topic", "activity-ingested", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 3 of 3; refused 0" in dry.stdout
    done = await asyncio.to_thread(
        spm, kafka_settings, "replay", "--topic", "activity-ingested", "--max", "2"
    )
    assert done.returncode == 0, done.stderr
    assert "replayed 2 of 2; refused 0" in done.stdout
    replayed = await read_all(kafka_settings, source, 2)
    assert sorted(m.key for m in replayed) == sorted(activity_message(f"c-{i}")[2] for i in range(2))
    assert all(dict(m.headers)["dlq_replays"] == b"1" for m in replayed)

    unknown = await asyncio.to_thread(spm, kafka_settings, "inspect", "--topic", "no-such-topic")
    assert unknown.returncode == 2
    assert "no topic 'no-such-topic' with a DLQ" in unknown.stderr
    assert dlq_topic("activity-ingested-dlq") is ACTIVITY_INGESTED


class MisconfiguredTenant:
    """Fails every call holding a ``globex`` message, as a handler does on that tenant's settings."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
        if any(m.envelope.tenant == "globex" for m in messages):
            raise TenantSettingsInvalid("globex", "attribution.ambiguity_policy", "'coin_flip': not a policy")
        self.seen += [m.payload.external_id for m in messages]
        return []


async def test_one_tenants_unusable_settings_do_not_count_toward_the_dlq_limit(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    for i in range(20):
        tenant = "globex" if i % 2 else "acme"
        value, headers, key = call_message(tenant, f"{tenant}-{i}", NOW, caller="+1", callee="+2")
        await producer.send(topic, value, key=key, headers=headers, partition=0)
    await producer.flush()
    handler = MisconfiguredTenant()
    runner = runner_for(kafka_settings, producer, handler, dlq_limit=3, dlq_window_messages=50)
    # Ten letters against a limit of three: the runner keeps going and handles acme's ten.
    await run_until(runner, lambda: len(handler.seen) == 10)
    assert sorted(handler.seen) == sorted(f"acme-{i}" for i in range(0, 20, 2))
    letters = await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=100)
    assert [letter.header("ce_tenant") for letter in letters] == ["globex"] * 10
    assert {letter.provenance["dlq_error"] for letter in letters} == {
        "TenantSettingsInvalid: tenant globex: settings invalid at attribution.ambiguity_policy: "
        "'coin_flip': not a policy"
    }


async def test_a_replay_for_one_tenant_leaves_another_tenant_s_letters_as_they_were(
    kafka_settings: KafkaSettings, producer: AIOKafkaProducer
) -> None:
    """Acme's cause is fixed, Globex's not yet. Replaying the whole DLQ sent Globex's letters back
    round (each replay counting against its cap): three tenants' fixes later they were refused
    and passed, and Globex's own replay, once fixed, found nothing. A replay for Acme replays
    Acme's letters only, in a group of its own; Globex's keep their count and their turn."""
    topic = ACTIVITY_INGESTED.physical(kafka_settings.topic_prefix)
    for i, tenant in enumerate(("acme", "globex", "acme", "globex")):
        value, headers, key = activity_message(f"bad-{i}", tenant=tenant)
        await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    runner = runner_for(kafka_settings, producer, Recorder())

    async def dlq_count() -> int:
        return len(await inspect_dead_letters(kafka_settings, ACTIVITY_INGESTED, limit=1000))

    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: dlq_count(), 4)
        # Acme's two, round after round (still failing here), until refused at the cap of 2.
        rounds = []
        for returned in (6, 8, 8):
            acme = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED, tenant="acme", max_replays=2)
            rounds.append((acme.seen, acme.replayed, len(acme.refused), acme.other_tenants))
            await wait_until(lambda: dlq_count(), returned)
        assert rounds == [(4, 2, 0, 2), (2, 2, 0, 0), (2, 0, 2, 0)]
        # Globex's, untouched: replayed once, from the start of the DLQ, in Globex's own group.
        globex = await replay_dead_letters(kafka_settings, ACTIVITY_INGESTED, tenant="globex", max_replays=2)
        assert (globex.seen, globex.replayed, len(globex.refused), globex.other_tenants) == (8, 2, 0, 6)
    finally:
        runner.stop()
        await task
    source = await read_all(kafka_settings, topic, 4 + 2 + 2 + 2)
    replayed = [dict(m.headers) for m in source if "dlq_replays" in dict(m.headers)]
    assert sorted((h["ce_tenant"], h["dlq_replays"]) for h in replayed) == [
        (b"acme", b"1"),
        (b"acme", b"1"),
        (b"acme", b"2"),
        (b"acme", b"2"),
        (b"globex", b"1"),
        (b"globex", b"1"),
    ]
