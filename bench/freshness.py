"""Freshness: how long after its ingest 2xx an activity counts in the read models.

Ingest, attribution and metrics run as ``spm run`` processes. Batches of activities are
offered on a fixed schedule (open loop, ``rate`` activities/s for ``seconds``); each batch's
2xx time is recorded, and a poller reads ``metric_contributions`` (the row the metrics service
writes in the same transaction as the rollups the gateway's scores read) every ``poll`` seconds
for the ids still pending. An activity's freshness is (first poll that sees it) - (its batch's
2xx), so the figures carry up to one poll interval of resolution.

Before the clock starts, one more batch goes through the whole pipeline and is waited for
(``warmup_ms``, reported): until then a consumer may still be joining its group (the embedded
broker holds a new group's first join for about half the session timeout), which is start-up,
not freshness. Waiting for the CRM entities only proves that attribution has joined.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx
import orjson

from bench.common import Engines, median, percentile, service_env, start_service, stop_services
from bench.pipeline import TENANT, _count, _prepare_database, dataset
from libs.common.contracts.activities import ActivityIn, activity_id_for
from libs.common.kafka.clients import create_topics
from libs.common.settings import KafkaSettings


async def _freshness(eng: Engines, rate: int, seconds: float, batch: int, poll: float) -> dict[str, Any]:
    count = int(rate * seconds)
    data = dataset(count + batch, seed=23)  # the last batch warms the pipeline up
    database, keys = await _prepare_database(eng)
    prefix = f"f{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(
        bootstrap_servers=eng.kafka.bootstrap_servers, topic_prefix=prefix, enable_idempotence=False
    )
    await create_topics(kafka, 4)
    env = service_env(eng, database, prefix)
    services = [start_service(name, env, eng.base) for name in ("ingest", "attribution", "metrics")]
    dsn = eng.postgres.url(database, driver="postgresql")
    ids_of_batch: list[list[uuid.UUID]] = []
    bodies: list[bytes] = []
    for first in range(0, count + batch, batch):
        chunk = data.activities[first : first + batch]
        bodies.append(orjson.dumps({"activities": chunk}))
        parsed = [ActivityIn.model_validate(a) for a in chunk]
        ids_of_batch.append([activity_id_for(TENANT, a.source, a.external_id) for a in parsed])
    acked_at: dict[uuid.UUID, float] = {}
    visible_at: dict[uuid.UUID, float] = {}
    failures = 0
    headers = {"Authorization": f"Bearer {keys['ingest']}", "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{services[0].port}",
            headers=headers,
            timeout=60,
            limits=httpx.Limits(max_connections=64),
        ) as client:
            for i in range(0, len(data.entities), 500):
                r = await client.post(
                    "/v1/crm/sync", json={"source": "bench", "entities": data.entities[i : i + 500]}
                )
                r.raise_for_status()
            deals = sum(1 for e in data.entities if e["entity_type"] == "deal")
            deadline = time.monotonic() + 120
            while await _count(dsn, "SELECT count(*) FROM ref_deals") < deals:
                if time.monotonic() > deadline:
                    raise TimeoutError("CRM data not materialised")
                await asyncio.sleep(0.2)

            async def send(index: int) -> None:
                nonlocal failures
                response = await client.post("/v1/events", content=bodies[index])
                now = time.perf_counter()
                if response.status_code != 202:
                    failures += 1
                    return
                for activity_id in ids_of_batch[index]:
                    acked_at[activity_id] = now

            conn = await asyncpg.connect(dsn)
            warmup_ms = await _warm_up(client, conn, bodies.pop(), ids_of_batch.pop())
            stop = asyncio.Event()

            async def poller() -> None:
                while not stop.is_set() or len(visible_at) < len(acked_at):
                    pending = [i for i in acked_at if i not in visible_at]
                    if pending:
                        rows = await conn.fetch(
                            "SELECT activity_id FROM metric_contributions WHERE tenant_id = $1 "
                            "AND activity_id = ANY($2::uuid[])",
                            TENANT,
                            pending,
                        )
                        now = time.perf_counter()
                        for row in rows:
                            visible_at[row["activity_id"]] = now
                    await asyncio.sleep(poll)

            watcher = asyncio.create_task(poller())
            tasks = []
            start = time.perf_counter() + 0.05
            interval = batch / rate
            for index in range(len(bodies)):
                delay = start + index * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(index)))
            await asyncio.gather(*tasks)
            offered_seconds = time.perf_counter() - start
            stop.set()
            await asyncio.wait_for(watcher, 300)
            await conn.close()
    finally:
        stop_services(services)
    lags = [visible_at[i] - acked_at[i] for i in acked_at]
    return {
        "activities": count,
        "acked": len(acked_at),
        "failed_batches": failures,
        "achieved_per_s": len(acked_at) / offered_seconds,
        "p50_ms": median(lags) * 1000,
        "p99_ms": percentile(lags, 99) * 1000,
        "max_ms": max(lags) * 1000,
        "warmup_ms": warmup_ms,
    }


async def _warm_up(
    client: httpx.AsyncClient, conn: asyncpg.Connection, body: bytes, ids: list[uuid.UUID]
) -> float:
    """Milliseconds from one batch's 2xx until all of its contributions are visible."""
    response = await client.post("/v1/events", content=body)
    response.raise_for_status()
    acked = time.perf_counter()
    deadline = time.monotonic() + 120
    while await conn.fetchval(
        "SELECT count(*) FROM metric_contributions WHERE tenant_id = $1 AND activity_id = ANY($2::uuid[])",
        TENANT,
        ids,
    ) < len(ids):
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up batch did not reach metrics")
        await asyncio.sleep(0.01)
    return (time.perf_counter() - acked) * 1000


def run_freshness(
    eng: Engines, rate: int, seconds: float, repeats: int, batch: int = 100, poll: float = 0.05
) -> dict[str, Any]:
    runs = []
    for round_ in range(repeats):
        result = asyncio.run(_freshness(eng, rate, seconds, batch, poll))
        runs.append(result)
        sys.stdout.write(
            f"  round {round_ + 1}: {result['achieved_per_s']:,.0f}/s acked, p50 {result['p50_ms']:.0f} ms "
            f"p99 {result['p99_ms']:.0f} ms (warm-up batch {result['warmup_ms']:.0f} ms)\n"
        )
    return {
        "offered_per_s": rate,
        "seconds": seconds,
        "batch": batch,
        "poll_seconds": poll,
        "repeats": repeats,
        "p50_ms": median([r["p50_ms"] for r in runs]),
        "p99_ms": median([r["p99_ms"] for r in runs]),
        "achieved_per_s": median([r["achieved_per_s"] for r in runs]),
        "warmup_ms": median([r["warmup_ms"] for r in runs]),
        "runs": runs,
    }
