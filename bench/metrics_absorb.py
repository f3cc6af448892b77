"""How fast one metrics consumer absorbs attributed activities into the rollups.

Run ``python -m bench.metrics_absorb`` (``--events N``, default 100,000). It starts the
embedded broker and PostgreSQL (or, with ``--configured``, uses ``KAFKA_*`` and
``DATABASE_*`` from the environment, on a fresh topic prefix and tenant), publishes N
``activity-attributed`` events, then starts one metrics process and reports attributed
events per second from its start until the rollups count every event, which it asserts
exactly. A share of the events are redeliveries and corrections, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import ActivityAttributedV1, ActivityFacts, AttributionStatus
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.db.engine import make_engine
from libs.common.kafka.clients import create_topics, make_producer
from libs.common.settings import ConsumerSettings, DatabaseSettings, KafkaSettings
from libs.common.testing.engines import Engines, embedded_engines
from libs.common.topics import ACTIVITY_ATTRIBUTED
from services.metrics.app import create_app
from services.metrics.settings import MetricsOptions, MetricsServiceSettings

KINDS = (
    (ActivityKind.CALL, Direction.OUTBOUND, Outcome.CONNECTED),
    (ActivityKind.CALL, Direction.OUTBOUND, Outcome.NO_ANSWER),
    (ActivityKind.EMAIL, Direction.OUTBOUND, Outcome.SENT),
    (ActivityKind.EMAIL, Direction.INBOUND, Outcome.RECEIVED),
    (ActivityKind.MEETING, Direction.OUTBOUND, Outcome.HELD),
)


def workload(tenant_id: str, count: int, seed: int = 7) -> list[ActivityAttributedV1]:
    """``count`` events over 90 days, 50 reps, 400 deals; every 10th re-attributes an earlier activity.

    A correction is version 2 of an activity already sent, so the number of distinct
    activities (what the rollups must count) is ``count - count // 10``.
    """
    rng = random.Random(seed)
    start = datetime(2026, 8, 1, tzinfo=UTC)
    events: list[ActivityAttributedV1] = []
    for number in range(count):
        if number % 10 == 9:
            # Re-attribute the activity sent five events ago to another rep.
            rep = rng.randrange(50)
            events.append(
                events[number - 5].model_copy(
                    update={"version": 2, "rep_id": f"rep-{rep}", "team_id": f"team-{rep % 5}"}
                )
            )
            continue
        kind, direction, outcome = KINDS[rng.randrange(len(KINDS))]
        rep = rng.randrange(50)
        events.append(
            ActivityAttributedV1(
                tenant_id=tenant_id,
                activity_id=uuid.UUID(int=number + 1),
                version=1,
                status=AttributionStatus.ATTRIBUTED,
                rep_id=f"rep-{rep}",
                team_id=f"team-{rep % 5}",
                account_id=f"acc-{rng.randrange(200)}",
                deal_id=f"deal-{rng.randrange(400)}",
                confidence=1.0,
                facts=ActivityFacts(
                    kind=kind,
                    direction=direction,
                    outcome=outcome,
                    occurred_at=start + timedelta(minutes=rng.randrange(90 * 24 * 60)),
                    duration_seconds=rng.choice((0, 45, 300)),
                    external_participants=1,
                    external_contact_ids=(f"con-{rng.randrange(1000)}",),
                ),
                decided_at=start,
            )
        )
    return events


async def publish(kafka: KafkaSettings, events: list[ActivityAttributedV1]) -> None:
    producer = make_producer(kafka, "bench")
    await producer.start()
    try:
        topic = ACTIVITY_ATTRIBUTED.physical(kafka.topic_prefix)
        futures = []
        for event in events:
            envelope = Envelope(
                id=f"{event.activity_id}:v{event.version}",
                source="/bench",
                type=ACTIVITY_ATTRIBUTED.event_type,
                subject=str(event.activity_id),
                tenant=event.tenant_id,
            )
            key = f"{event.tenant_id}:{event.rep_id}".encode()
            futures.append(
                await producer.send(topic, value=encode_body(event), key=key, headers=envelope.to_headers())
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def absorb(kafka: KafkaSettings, database: DatabaseSettings, count: int, timeout_s: float) -> float:
    tenant_id = f"bench-{uuid.uuid4().hex[:8]}"
    engine = make_engine(database, "bench")
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id) VALUES (:t)"), {"t": tenant_id})
    events = workload(tenant_id, count)
    distinct = len({e.activity_id for e in events})
    await create_topics(kafka)
    began = time.perf_counter()
    await publish(kafka, events)
    print(f"published {count} events in {time.perf_counter() - began:.1f} s")

    app = create_app(
        MetricsServiceSettings(
            kafka=kafka,
            database=database,
            consumer=ConsumerSettings(session_timeout_ms=10_000),
            metrics=MetricsOptions(),
        )
    )
    began = time.perf_counter()
    counted = 0
    async with app.router.lifespan_context(app):
        while time.perf_counter() - began < timeout_s:
            async with engine.connect() as conn:
                counted = (
                    await conn.execute(
                        text(
                            "SELECT COALESCE(sum(activities), 0) FROM metric_rollups "
                            "WHERE tenant_id = :t AND level = 'rep' AND granularity = 'quarter'"
                        ),
                        {"t": tenant_id},
                    )
                ).scalar_one()
            if counted >= distinct:
                break
            await asyncio.sleep(0.25)
        elapsed = time.perf_counter() - began
    async with engine.connect() as conn:
        contributions = (
            await conn.execute(
                text("SELECT count(*) FROM metric_contributions WHERE tenant_id = :t AND version = 2"),
                {"t": tenant_id},
            )
        ).scalar_one()
    await engine.dispose()
    assert counted == distinct, f"rollups count {counted} activities, expected exactly {distinct}"
    assert contributions == count - distinct, (
        f"{contributions} corrections applied, expected {count - distinct}"
    )
    rate = count / elapsed
    print(
        f"absorbed {count} attributed events ({distinct} activities) in {elapsed:.1f} s: {rate:,.0f} events/s"
    )
    return rate


@contextmanager
def engines_for_bench() -> Iterator[Engines]:
    base = Path(tempfile.mkdtemp(prefix="spm-metrics-bench-"))
    try:
        with embedded_engines(base) as running:
            yield running
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=1_800.0)
    parser.add_argument(
        "--configured", action="store_true", help="use KAFKA_* and DATABASE_* from the environment"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.configured:
        kafka = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
        asyncio.run(absorb(kafka, DatabaseSettings(), args.events, args.timeout))
        return
    with engines_for_bench() as engines:
        name = engines.new_database()
        kafka = engines.kafka_settings(prefix=f"bench{uuid.uuid4().hex[:8]}.", partitions=2)
        asyncio.run(
            absorb(kafka, DatabaseSettings(url=engines.postgres.url(name)), args.events, args.timeout)
        )


if __name__ == "__main__":
    main()
