"""Attribution CPU per activity, in process: ``python -m bench.attribution_cpu [--rounds 3]``.

The consumer's own path without the broker: the bench's demo tenant (``bench.pipeline.dataset``)
is posted once to the ingest app in this process (``httpx.ASGITransport``) with its publisher
capturing what it would produce, and those messages (bodies and headers) are kept in a file
(``--messages``) so that two checkouts measure the same bytes. Then, on an embedded PostgreSQL:
the CRM messages go through ``handle_batch`` once, the database is analysed (as the pipeline
bench does) and kept as a template; each round copies it and feeds the activity messages in
batches of ``--batch`` through what ``ConsumerRunner`` does per batch (``Envelope.from_headers``,
the topic's decoder, ``check_tenant``, the collector paused) and ``handle_batch`` with the
app's dependencies (tenant settings cache, erasure screen) and a producer that builds the
record batches (``send_in_batches``) but sends nothing.

Each round prints this process's CPU time per activity (``time.process_time``: attribution and
the asyncpg client on uvloop, not PostgreSQL's backend, whose CPU is read separately with psutil). Compare
two code versions by running this in each checkout, alternating the runs (the machine's load
drifts); ``--profile FILE`` writes a cProfile of the timed rounds instead.

Instruction counts of the timed rounds alone, which the machine's load does not move: build
``cg.c``, holding ``#include <valgrind/callgrind.h>``, ``void cg_start(void) { CALLGRIND_ZERO_STATS;
CALLGRIND_START_INSTRUMENTATION; }`` and ``void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION;
CALLGRIND_DUMP_STATS_AT("timed"); }``, with ``gcc -O2 -shared -fPIC -o libcg.so cg.c``, then run
``PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no python -m bench.attribution_cpu
--rounds 1 --callgrind-lib ./libcg.so``: the dump's ``totals`` are the round's instructions in this
process (PostgreSQL is another process, not traced).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import psutil
import uvloop

from bench.ingest_throughput import SECRET_KEY
from libs.common.contracts.envelope import Envelope

TENANT = "bench"
#: (topic name, key, value, headers) as the ingest app would have produced them.
Raw = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


async def _capture(url: str, bootstrap: str, activities: int) -> tuple[list[Raw], list[Raw]]:
    """The CRM and activity messages ingest publishes for the pipeline bench's data."""
    import httpx
    import orjson

    from bench.pipeline import dataset
    from libs.common.db.engine import make_engine
    from libs.common.kafka.publisher import KafkaPublisher, OutgoingMessage
    from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
    from libs.common.tenancy import create_tenant
    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    engine = make_engine(DatabaseSettings(url=url), "bench")
    async with engine.begin() as conn:
        created = await create_tenant(conn, TENANT, SECRET_KEY)
    await engine.dispose()
    key = dict(created["api_keys"])["ingest"]  # type: ignore[call-overload]
    captured: list[OutgoingMessage] = []

    async def publish(self: KafkaPublisher, messages: Sequence[OutgoingMessage]) -> None:
        captured.extend(messages)

    async def warm_up(self: KafkaPublisher, topics: Sequence[str], timeout_seconds: float = 30.0) -> None:
        return None

    KafkaPublisher.publish = publish  # type: ignore[method-assign]
    KafkaPublisher.warm_up = warm_up  # type: ignore[method-assign]
    settings = IngestSettings(
        runtime=RuntimeSettings(secret_key=SECRET_KEY),
        kafka=KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False),
        database=DatabaseSettings(url=url),
    )
    app = create_app(settings)
    data = dataset(activities)
    headers = {"Authorization": f"Bearer {key}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            for i in range(0, len(data.entities), 500):
                r = await client.post(
                    "/v1/crm/sync", json={"source": "bench", "entities": data.entities[i : i + 500]}
                )
                r.raise_for_status()
            crm = len(captured)
            for i in range(0, len(data.activities), 1000):
                body = orjson.dumps({"activities": data.activities[i : i + 1000]})
                r = await client.post(
                    "/v1/events", content=body, headers={"Content-Type": "application/json"}
                )
                r.raise_for_status()

    def raw(m: OutgoingMessage) -> Raw:
        return (m.topic, m.key, m.value, m.envelope.to_headers())

    return [raw(m) for m in captured[:crm]], [raw(m) for m in captured[crm:]]


def capture(path: Path, activities: int) -> None:
    from bench.common import engines

    with engines(partitions=1) as eng:
        crm, acts = asyncio.run(_capture(eng.postgres.url("spm"), eng.kafka.bootstrap_servers, activities))
    path.write_bytes(msgspec.msgpack.encode({"crm": crm, "activities": acts}))
    print(f"captured {len(crm)} CRM and {len(acts)} activity messages into {path}", flush=True)


class _BuildingProducer:
    """What ``send_in_batches`` asks of the producer (4 partitions, the service's partitioner): a
    real ``BatchBuilder`` per batch, built (as the sender would before sending), acknowledged at once."""

    def __init__(self) -> None:
        from aiokafka.producer.message_accumulator import BatchBuilder

        from libs.common.kafka.partitioning import KeyHashPartitioner

        self._partitioner = KeyHashPartitioner()
        self._partitions = frozenset(range(4))
        self._batch = BatchBuilder
        self.records = 0

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def _partition(self, topic: str, partition: int | None, key: bytes, *args: Any) -> int:
        # As ``AIOKafkaProducer._partition``: the topic's partitions listed from the metadata.
        return self._partitioner(key, list(self._partitions), list(self._partitions))

    def create_batch(self) -> Any:
        return self._batch(1_048_576, 0)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.records += batch.record_count()
        batch._build()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[None]:
        self.records += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _backend_cpu(pid: int) -> float:
    """CPU seconds of PostgreSQL's processes (the postmaster and every backend it forked)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def _rounds(
    pg: Any,
    messages: dict[str, list[Raw]],
    rounds: int,
    batch: int,
    profile: str | None,
    callgrind: Any = None,
) -> None:
    from libs.common.collector import collector_paused, tune_garbage_collector
    from libs.common.contracts.envelope import check_tenant
    from libs.common.db.engine import make_engine
    from libs.common.erasures import ErasureListCache
    from libs.common.kafka.runner import ConsumedMessage
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant
    from libs.common.tenant_settings_store import TenantSettingsCache
    from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
    from services.attribution.erasure import ErasureScreen
    from services.attribution.handlers import AttributionDeps, handle_batch

    by_name = {t.physical(""): t for t in (ACTIVITY_INGESTED, CRM_ENTITY_CHANGED)}

    def decode(raws: Sequence[Raw]) -> list[ConsumedMessage[Any]]:
        out = []
        with collector_paused():
            for offset, (topic_name, key, value, headers) in enumerate(raws):
                topic = by_name[topic_name]
                envelope = Envelope.from_headers(headers)
                payload = topic.decode_as(envelope.type, value)
                check_tenant(envelope, payload)
                out.append(ConsumedMessage(topic, 0, offset, key, envelope, payload))
        return out

    async def deps_for(url: str) -> tuple[AttributionDeps, Any]:
        engine = make_engine(DatabaseSettings(url=url), "attribution")
        deps = AttributionDeps(
            engine,
            _BuildingProducer(),
            "",
            5_000,
            TenantSettingsCache(engine, 60),
            ErasureScreen(ErasureListCache(engine, SECRET_KEY, 60)),
        )
        return deps, engine

    template = f"tpl_{uuid.uuid4().hex[:8]}"
    pg.psql(f'CREATE DATABASE "{template}"')
    from libs.common.db.migrate import upgrade

    await asyncio.to_thread(upgrade, pg.url(template))
    deps, engine = await deps_for(pg.url(template))
    async with engine.begin() as conn:
        await create_tenant(conn, TENANT, SECRET_KEY)
    crm = messages["crm"]
    for i in range(0, len(crm), 500):
        with collector_paused():
            await handle_batch(decode(crm[i : i + 500]), deps)
    await engine.dispose()
    import asyncpg

    conn2 = await asyncpg.connect(pg.url(template, driver="postgresql"))
    await conn2.execute("ANALYZE")
    await conn2.close()
    tune_garbage_collector()
    acts = messages["activities"]
    for r in range(rounds):
        name = f"r_{uuid.uuid4().hex[:8]}"
        pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        deps, engine = await deps_for(pg.url(name))
        # Warm-up outside the clock: connections, caches, the first statements' preparation.
        await handle_batch(decode(acts[:50]), deps)
        rest = acts[50:]
        profiler = cProfile.Profile() if profile else None
        pg_cpu0 = _backend_cpu(pg.process.pid)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        if callgrind is not None:
            callgrind.cg_start()
        for i in range(0, len(rest), batch):
            decoded = decode(rest[i : i + batch])
            with collector_paused():
                await handle_batch(decoded, deps)
        if callgrind is not None:
            callgrind.cg_stop()
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{r}")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        pg_cpu = _backend_cpu(pg.process.pid) - pg_cpu0
        published = deps.producer.records
        await engine.dispose()
        pg.psql(f'DROP DATABASE "{name}"')
        row = {
            "round": r + 1,
            "activities": len(rest),
            "cpu_us": round(cpu / len(rest) * 1e6, 1),
            "pg_cpu_us": round(pg_cpu / len(rest) * 1e6, 1),
            "wall_s": round(wall, 2),
            "published": published,
        }
        print(json.dumps(row), flush=True)
        _results.append(row)


_results: list[dict[str, Any]] = []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--activities", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--messages", type=Path, default=None, help="captured messages (made if absent)")
    parser.add_argument("--profile", default=None, help="write cProfile stats to FILE.<round>")
    parser.add_argument(
        "--callgrind-lib",
        default=None,
        help="a shared library exporting cg_start and cg_stop (see the module's docstring)",
    )
    args = parser.parse_args(argv)
    path = args.messages or Path(tempfile.gettempdir()) / f"attribution-cpu-{args.activities}.msgpack"
    if not path.exists():
        capture(path, args.activities)
    messages = msgspec.msgpack.decode(path.read_bytes())
    from libs.common.embedded import EmbeddedPostgres

    base = Path(tempfile.mkdtemp(prefix="spm-attr-cpu-"))
    pg = EmbeddedPostgres(base / "pg")
    pg.start()
    try:
        # On uvloop, as ``spm run attribution`` (``libs.common.serve``).
        callgrind = ctypes.CDLL(args.callgrind_lib) if args.callgrind_lib else None
        uvloop.run(_rounds(pg, messages, args.rounds, args.batch, args.profile, callgrind))
    finally:
        pg.stop()
    shutil.rmtree(base, ignore_errors=True)  # only after a clean run, as ``bench.common.engines``
    print(
        json.dumps(
            {
                "cpu_us_median": statistics.median(r["cpu_us"] for r in _results),
                "cpu_us": [r["cpu_us"] for r in _results],
                "pg_cpu_us_median": statistics.median(r["pg_cpu_us"] for r in _results),
            }
        )
    )


if __name__ == "__main__":
    main()
