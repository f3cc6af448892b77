"""Pipeline throughput: ingest -> attribution -> metrics, against a bare two-hop relay.

Both run on the same embedded broker with the same partitions and message sizes. The
pipeline's clock runs from the first POST until PostgreSQL holds a contribution for every
activity (exact count asserted, so no speed comes from dropped events); the relay's from the
first produce until the last relayed message is consumed.

Over the pipeline's timed window it also reports PostgreSQL's CPU by backend
(``postgres_by_backend``, us per event: each service's connections, autovacuum, the walwriter...,
``bench.pg_backends``) and, with ``BENCH_PG_STATEMENTS=1``, its statements per event
(``postgres_statements``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    Engines,
    RssSampler,
    cpu_by_pid,
    service_env,
    start_service,
    stop_services,
)
from bench.pg_backends import BackendSampler, per_event, statements, statements_reset
from libs.common.contracts.activities import ActivityIn, activity_id_for
from libs.common.contracts.envelope import Envelope
from libs.common.db.migrate import upgrade
from libs.common.kafka.clients import create_topics
from libs.common.settings import KafkaSettings
from libs.common.tenancy import create_tenant
from spm.demo import DemoDataset, generate_demo

TENANT = "bench"


def dataset(activities: int, seed: int = 11) -> DemoDataset:
    """The demo tenant's CRM and at least ``activities`` activities (older quarters repeated)."""
    base = generate_demo(seed=seed)
    out = DemoDataset(entities=base.entities, activities=[])
    round_ = 0
    while len(out.activities) < activities:
        shift = timedelta(days=91 * round_)
        for a in base.activities:
            if len(out.activities) >= activities:
                break
            copy = dict(a)
            copy["external_id"] = f"{a['external_id']}-r{round_}"
            if round_:
                moment = ActivityIn.model_validate(a).occurred_at - shift
                copy["occurred_at"] = moment.isoformat()
                if copy.get("thread_id"):
                    copy["thread_id"] = f"{a['thread_id']}-r{round_}"
            out.activities.append(copy)
        round_ += 1
    return out


async def _prepare_database(eng: Engines) -> tuple[str, dict[str, str]]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    eng.postgres.psql(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(upgrade, eng.postgres.url(name))
    from libs.common.db.engine import make_engine
    from libs.common.settings import DatabaseSettings

    engine = make_engine(DatabaseSettings(url=eng.postgres.url(name)), "bench")
    async with engine.begin() as conn:
        created = await create_tenant(conn, TENANT, "bench-secret")
    await engine.dispose()
    return name, dict(created["api_keys"])  # type: ignore[call-overload]


def _poll_delay(remaining: int, rate: float) -> float:
    """Half the time the rest should take at the rate so far, between 0.2 and 2 seconds.

    Each poll is a ``count(*)`` over every contribution, charged to PostgreSQL's CPU: polling
    every 0.2 s from the start cost 10-19 us per event at 50,000 activities. Near the end the
    delay is back to 0.2 s, so the measured time stays as exact as before.
    """
    if rate <= 0:
        return 0.5
    return max(0.2, min(2.0, remaining / rate / 2))


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "bench-poller"})
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def run_pipeline(
    eng: Engines, data: DemoDataset, partitions: int = 4, instances: int = 1
) -> dict[str, Any]:
    database, keys = await _prepare_database(eng)
    prefix = f"p{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(
        bootstrap_servers=eng.kafka.bootstrap_servers, topic_prefix=prefix, enable_idempotence=False
    )
    await create_topics(kafka, partitions)
    env = service_env(eng, database, prefix)
    services = [start_service("ingest", env, eng.base)]
    for _ in range(instances):
        services.append(start_service("attribution", env, eng.base))
        services.append(start_service("metrics", env, eng.base))
    dsn = eng.postgres.url(database, driver="postgresql")
    headers = {"Authorization": f"Bearer {keys['ingest']}"}
    ingest_url = f"http://127.0.0.1:{services[0].port}"
    try:
        async with httpx.AsyncClient(base_url=ingest_url, headers=headers, timeout=60) as client:
            crm_started = time.monotonic()
            for i in range(0, len(data.entities), 500):
                r = await client.post(
                    "/v1/crm/sync", json={"source": "bench", "entities": data.entities[i : i + 500]}
                )
                r.raise_for_status()
            posted_s = time.monotonic() - crm_started
            deadline = time.monotonic() + 120
            deals = sum(1 for e in data.entities if e["entity_type"] == "deal")
            first_s = None
            while (held := await _count(dsn, "SELECT count(*) FROM ref_deals")) < deals:
                if first_s is None and held:
                    first_s = time.monotonic() - crm_started
                if time.monotonic() > deadline:
                    raise TimeoutError("CRM data not materialised")
                await asyncio.sleep(0.05)
            crm_load_s = time.monotonic() - crm_started
            print(
                f"pipeline: CRM load of {len(data.entities)} entities: posted in {posted_s:.2f}s, first deal "
                f"stored at {first_s or crm_load_s:.2f}s, every deal at {crm_load_s:.2f}s"
            )
            # The steady state has planner statistics (autovacuum analyzes within a minute of a
            # load); a database created seconds ago has none, and the reference lookups of the
            # first minute then run as nested loops over sequential scans.
            await _execute(dsn, "ANALYZE")
            pids = {s.name + ("" if i < 3 else f"-{i}"): s.process.pid for i, s in enumerate(services)}
            groups_before = _groups(services, eng)
            per_pid_before = cpu_by_pid([p for g in groups_before.values() for p in g])
            batches = [data.activities[i : i + 1000] for i in range(0, len(data.activities), 1000)]
            semaphore = asyncio.Semaphore(4)

            async def send(batch: list[dict[str, Any]]) -> None:
                async with semaphore:
                    body = orjson.dumps({"activities": batch})
                    for _ in range(50):
                        r = await client.post(
                            "/v1/events", content=body, headers={"Content-Type": "application/json"}
                        )
                        if r.status_code == 503:
                            await asyncio.sleep(0.5)
                            continue
                        r.raise_for_status()
                        return
                    raise RuntimeError("ingest kept answering 503")

            consumers = [s for s in services if s.name in ("attribution", "metrics")]
            samples_before = await _consumer_samples(consumers)
            assert eng.postgres.process is not None
            tracking = await statements_reset(dsn)
            backends = BackendSampler(eng.postgres.process.pid, dsn)
            await backends.start()
            with RssSampler(pids) as rss:
                started = time.perf_counter()
                await asyncio.gather(*(send(b) for b in batches))
                accepted_at = time.perf_counter()
                expected = len(data.activities)
                while True:
                    counted = await _count(dsn, "SELECT count(*) FROM metric_contributions")
                    if counted >= expected:
                        break
                    now = time.perf_counter() - started
                    if now > 900:
                        raise TimeoutError(f"only {counted} of {expected} activities counted")
                    await asyncio.sleep(_poll_delay(expected - counted, counted / now))
                elapsed = time.perf_counter() - started
            by_backend = await backends.stop()
            by_statement = await statements(dsn, expected) if tracking else []
            for query, us, calls, buffers in by_statement:
                print(f"    {us:8.2f} us {calls:8.4f} calls {buffers:8.2f} buffers per event  {query}")
            samples_after = await _consumer_samples(consumers)
            groups_after = _groups(services, eng)
            per_pid_after = cpu_by_pid([p for g in groups_after.values() for p in g])
            by_process = {
                name: round(
                    sum(per_pid_after.get(p, 0.0) - per_pid_before.get(p, 0.0) for p in pids_)
                    / expected
                    * 1000,
                    3,
                )
                for name, pids_ in groups_after.items()
            }
            rollup_total = await _count(
                dsn,
                "SELECT coalesce(sum(activities), 0) FROM metric_rollups WHERE level = 'rep' AND granularity = 'day'",
            )
        return {
            "activities": expected,
            "counted": counted,
            "rollup_activities": rollup_total,
            "seconds": elapsed,
            "ingest_seconds": accepted_at - started,
            "crm_load_seconds": crm_load_s,
            "events_per_second": expected / elapsed,
            # Every process, PostgreSQL backends opened during the run included (from zero).
            "cpu_seconds_per_1000": sum(by_process.values()),
            "cpu_seconds_per_1000_by_process": by_process,
            # PostgreSQL's CPU by backend, us per event, its ended processes included.
            "postgres_by_backend": per_event(by_backend, expected),
            "postgres_statements": by_statement,
            "peak_rss_mb": {name: round(value / 1_048_576, 1) for name, value in rss.peaks.items()},
            "consumers": consumer_waits(samples_before, samples_after, elapsed),
        }
    finally:
        stop_services(services)


#: The runner's per-batch phases (``spm_consumer_phase_seconds``) that are the consumer at work.
_BUSY_PHASES = ("decode", "handler", "offsets")


async def _consumer_samples(services: list[Any]) -> dict[str, dict[tuple[str, ...], float]]:
    """Each consumer's (summed over instances) batch counters from its ``/metrics``: phase seconds
    and counts, statements, batches and messages processed."""
    out: dict[str, dict[tuple[str, ...], float]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for service in services:
            text = (await client.get(f"http://127.0.0.1:{service.port}/metrics")).text
            held = out.setdefault(service.name, {})
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    key = _sample_key(sample.name, sample.labels)
                    if key is not None:
                        held[key] = held.get(key, 0.0) + sample.value
    return out


def _sample_key(name: str, labels: dict[str, str]) -> tuple[str, ...] | None:
    if name in ("spm_consumer_phase_seconds_sum", "spm_consumer_phase_seconds_count"):
        return (name, labels["phase"])
    if name in ("spm_consumer_round_trips_sum", "spm_consumer_batch_seconds_count"):
        return (name,)
    if name == "spm_consumer_messages_total" and labels.get("outcome") == "processed":
        return (name,)
    return None


def consumer_waits(
    before: dict[str, dict[tuple[str, ...], float]],
    after: dict[str, dict[tuple[str, ...], float]],
    elapsed: float,
) -> dict[str, dict[str, Any]]:
    """Per consumer over the timed window: batches, messages and statements per batch, and the
    share of the window in each phase (``busy``: decoding, the handler, offset commits). Shares
    and counts are what another engineer's load on the machine moves least."""
    out: dict[str, dict[str, Any]] = {}
    for service, held in after.items():
        was = before.get(service, {})

        def delta(
            *key: str, held: dict[tuple[str, ...], float] = held, was: dict[tuple[str, ...], float] = was
        ) -> float:
            return held.get(key, 0.0) - was.get(key, 0.0)

        batches = delta("spm_consumer_batch_seconds_count")
        phases = sorted({key[1] for key in held if key[0] == "spm_consumer_phase_seconds_sum"})
        out[service] = {
            "batches": int(batches),
            "messages_per_batch": round(delta("spm_consumer_messages_total") / batches, 1)
            if batches
            else 0.0,
            "round_trips_per_batch": round(delta("spm_consumer_round_trips_sum") / batches, 1)
            if batches
            else 0.0,
            "busy_fraction": round(
                sum(delta("spm_consumer_phase_seconds_sum", p) for p in _BUSY_PHASES) / elapsed, 3
            ),
            "fractions": {p: round(delta("spm_consumer_phase_seconds_sum", p) / elapsed, 3) for p in phases},
        }
    return out


def _groups(services: list[Any], eng: Engines) -> dict[str, list[int]]:
    """Process ids by role; PostgreSQL backends started during the run are counted from zero."""
    groups: dict[str, list[int]] = {}
    for s in services:
        groups.setdefault(s.name, []).append(s.process.pid)
    groups.update(eng.pid_groups())
    return groups


async def run_relay(eng: Engines, data: DemoDataset, partitions: int = 4) -> dict[str, Any]:
    """Produce the same bodies to topic A, relay A -> B in a consumer/producer pair, consume B."""
    prefix = f"r{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(
        bootstrap_servers=eng.kafka.bootstrap_servers, topic_prefix=prefix, enable_idempotence=False
    )
    await create_topics(kafka, partitions)
    source, target = f"{prefix}activity-ingested", f"{prefix}activity-attributed"
    bodies = []
    for a in data.activities:
        activity = ActivityIn.model_validate(a)
        activity_id = activity_id_for(TENANT, activity.source, activity.external_id)
        payload = {**activity.model_dump(mode="json"), "tenant_id": TENANT, "activity_id": str(activity_id)}
        bodies.append((str(activity_id).encode(), orjson.dumps(payload)))
    servers = eng.kafka.bootstrap_servers
    headers = Envelope(id="x", source="/bench", type="t", subject="s", tenant=TENANT).to_headers()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5, enable_idempotence=False)
    relay_in = AIOKafkaConsumer(
        source,
        bootstrap_servers=servers,
        group_id=f"{prefix}relay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    relay_out = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5, enable_idempotence=False)
    sink = AIOKafkaConsumer(
        target,
        bootstrap_servers=servers,
        group_id=f"{prefix}sink",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    for client in (producer, relay_in, relay_out, sink):
        await client.start()
    expected = len(bodies)

    async def relay() -> None:
        moved = 0
        while moved < expected:
            batch = await relay_in.getmany(timeout_ms=200, max_records=2000)
            futures = []
            for messages in batch.values():
                for m in messages:
                    futures.append(
                        await relay_out.send(target, key=m.key, value=m.value, headers=list(m.headers))
                    )
                moved += len(messages)
            await asyncio.gather(*futures)
            if batch:
                await relay_in.commit({tp: messages[-1].offset + 1 for tp, messages in batch.items()})

    async def consume() -> int:
        seen = 0
        while seen < expected:
            batch = await sink.getmany(timeout_ms=200, max_records=2000)
            seen += sum(len(v) for v in batch.values())
            if batch:
                await sink.commit({tp: messages[-1].offset + 1 for tp, messages in batch.items()})
        return seen

    try:
        started = time.perf_counter()
        relay_task = asyncio.create_task(relay())
        consume_task = asyncio.create_task(consume())
        futures = [await producer.send(source, key=k, value=v, headers=headers) for k, v in bodies]
        await asyncio.gather(*futures)
        seen = await asyncio.wait_for(consume_task, 600)
        await relay_task
        elapsed = time.perf_counter() - started
    finally:
        for client in (producer, relay_in, relay_out, sink):
            await client.stop()
    return {
        "activities": expected,
        "consumed": seen,
        "seconds": elapsed,
        "events_per_second": expected / elapsed,
    }
