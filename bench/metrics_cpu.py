"""Metrics CPU per attributed event, in process: ``python -m bench.metrics_cpu [--rounds 3]``.

The consumer's own path without the broker, as ``bench.attribution_cpu`` measures attribution's:
the bench's demo tenant is captured as ingest publishes it (``bench.attribution_cpu``'s file),
decided once by attribution's ``handle_batch`` on an embedded PostgreSQL, and the
``activity-attributed`` messages it publishes are kept in a file (``--messages``) so that two
checkouts measure the same bytes. Each round creates a database with the tenant and feeds those
messages in batches of ``--batch`` through what ``ConsumerRunner`` does per batch
(``Envelope.from_headers``, the topic's decoder, ``check_tenant``, the collector paused) and
metrics' ``handle_batch`` with the app's dependencies (tenant settings cache, scoring models), on
uvloop. After the round the rollups are checked: the quarter's rep cells count exactly the
activities attributed to a rep.

Prints this process's CPU time per event and PostgreSQL's; ``--profile FILE`` writes a cProfile
of the timed rounds, ``--callgrind-lib`` counts the timed round's instructions alone (see
``bench.attribution_cpu``'s docstring for the library and the valgrind command line).
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
import uvloop

from bench.attribution_cpu import TENANT, Raw, _backend_cpu, _BuildingProducer, capture
from bench.ingest_throughput import SECRET_KEY
from libs.common.contracts.envelope import Envelope


def _decoder() -> Any:
    from libs.common.collector import collector_paused
    from libs.common.contracts.envelope import check_tenant
    from libs.common.kafka.runner import ConsumedMessage
    from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED

    by_name = {t.physical(""): t for t in (ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, ACTIVITY_ATTRIBUTED)}

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

    return decode


async def _attribute(pg: Any, inputs: dict[str, list[Raw]]) -> list[Raw]:
    """What attribution publishes to ``activity-attributed`` for the captured inputs."""
    import services.attribution.handlers as attribution
    from libs.common.db.engine import make_engine
    from libs.common.db.migrate import upgrade
    from libs.common.kafka.publisher import OutgoingMessage
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant
    from libs.common.topics import ACTIVITY_ATTRIBUTED

    published: list[OutgoingMessage] = []

    async def capture_sends(producer: Any, messages: Sequence[OutgoingMessage]) -> list[Any]:
        published.extend(messages)
        return []

    attribution.send_in_batches = capture_sends  # type: ignore[attr-defined,assignment]
    name = f"a_{uuid.uuid4().hex[:8]}"
    pg.psql(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(upgrade, pg.url(name))
    engine = make_engine(DatabaseSettings(url=pg.url(name)), "attribution")
    async with engine.begin() as conn:
        await create_tenant(conn, TENANT, SECRET_KEY)
    deps = attribution.AttributionDeps(engine, _BuildingProducer(), "")
    decode = _decoder()
    for kind in ("crm", "activities"):
        raws = inputs[kind]
        for i in range(0, len(raws), 1000):
            await attribution.handle_batch(decode(raws[i : i + 1000]), deps)
    await engine.dispose()
    pg.psql(f'DROP DATABASE "{name}"')
    topic = ACTIVITY_ATTRIBUTED.physical("")
    return [(m.topic, m.key, m.value, m.envelope.to_headers()) for m in published if m.topic == topic]


async def _expected_rep_activities(engine: Any) -> int:
    from sqlalchemy import text

    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM metric_contributions WHERE tenant_id = :t "
                        "AND rep_id IS NOT NULL AND activities > 0"
                    ),
                    {"t": TENANT},
                )
            ).scalar_one()
        )


async def _counted(engine: Any) -> int:
    from sqlalchemy import text

    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT COALESCE(sum(activities), 0) FROM metric_rollups WHERE tenant_id = :t "
                        "AND level = 'rep' AND granularity = 'quarter'"
                    ),
                    {"t": TENANT},
                )
            ).scalar_one()
        )


async def _rounds(
    pg: Any, raws: list[Raw], rounds: int, batch: int, profile: str | None, callgrind: Any = None
) -> None:
    from libs.common.collector import collector_paused, tune_garbage_collector
    from libs.common.db.engine import make_engine
    from libs.common.db.migrate import upgrade
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant
    from libs.common.tenant_settings_store import TenantSettingsCache
    from services.metrics.adapters.scoring import ScoringModelCache
    from services.metrics.handlers import MetricsDeps, handle_batch

    decode = _decoder()
    template = f"tpl_{uuid.uuid4().hex[:8]}"
    pg.psql(f'CREATE DATABASE "{template}"')
    await asyncio.to_thread(upgrade, pg.url(template))
    engine = make_engine(DatabaseSettings(url=pg.url(template)), "metrics")
    async with engine.begin() as conn:
        await create_tenant(conn, TENANT, SECRET_KEY)
    await engine.dispose()
    tune_garbage_collector()
    for r in range(rounds):
        name = f"r_{uuid.uuid4().hex[:8]}"
        pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        engine = make_engine(DatabaseSettings(url=pg.url(name)), "metrics")
        deps = MetricsDeps(engine, TenantSettingsCache(engine, 60), ScoringModelCache())
        # Warm-up outside the clock: connections, caches, the first statements' preparation.
        await handle_batch(decode(raws[:50]), deps)
        rest = raws[50:]
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
        expected, counted = await _expected_rep_activities(engine), await _counted(engine)
        await engine.dispose()
        pg.psql(f'DROP DATABASE "{name}"')
        assert counted == expected, f"rollups count {counted} activities, expected exactly {expected}"
        row = {
            "round": r + 1,
            "events": len(rest),
            "cpu_us": round(cpu / len(rest) * 1e6, 1),
            "pg_cpu_us": round(pg_cpu / len(rest) * 1e6, 1),
            "wall_s": round(wall, 2),
            "rep_activities": counted,
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
    parser.add_argument(
        "--inputs", type=Path, default=None, help="ingest's captured messages (made if absent)"
    )
    parser.add_argument("--messages", type=Path, default=None, help="attributed messages (made if absent)")
    parser.add_argument("--profile", default=None, help="write cProfile stats to FILE.<round>")
    parser.add_argument(
        "--callgrind-lib",
        default=None,
        help="a shared library exporting cg_start and cg_stop (see bench.attribution_cpu)",
    )
    args = parser.parse_args(argv)
    inputs = args.inputs or Path(tempfile.gettempdir()) / f"attribution-cpu-{args.activities}.msgpack"
    path = args.messages or Path(tempfile.gettempdir()) / f"metrics-cpu-{args.activities}.msgpack"
    from libs.common.embedded import EmbeddedPostgres

    base = Path(tempfile.mkdtemp(prefix="spm-metrics-cpu-"))
    pg = EmbeddedPostgres(base / "pg")
    pg.start()
    try:
        if not path.exists():
            if not inputs.exists():
                capture(inputs, args.activities)
            attributed = uvloop.run(_attribute(pg, msgspec.msgpack.decode(inputs.read_bytes())))
            path.write_bytes(msgspec.msgpack.encode(attributed))
            print(f"kept {len(attributed)} attributed messages in {path}", flush=True)
        raws = [tuple(r) for r in msgspec.msgpack.decode(path.read_bytes())]
        callgrind = ctypes.CDLL(args.callgrind_lib) if args.callgrind_lib else None
        uvloop.run(_rounds(pg, raws, args.rounds, args.batch, args.profile, callgrind))
    finally:
        pg.stop()
    shutil.rmtree(base, ignore_errors=True)
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
