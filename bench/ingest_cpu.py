"""Ingest CPU per activity of ``POST /v1/events``, in process: ``python -m bench.ingest_cpu``.

The ingest app runs in this process (``httpx.ASGITransport``, the app ``spm run ingest`` serves)
on an embedded PostgreSQL, on uvloop, without a broker: its publisher builds the real record
batches (``send_in_batches`` into ``bench.attribution_cpu``'s producer, which builds each batch
and sends nothing). Each round creates a database with the bench tenant
(``bench.ingest_throughput.prepare_tenant``) and posts ``--activities`` new activities
(``bench.ingest_throughput.events_batch``) in sequential batches of 1,000, after one warm-up batch;
it checks that every activity was published once and recorded in the duplicate ledger.

Prints this process's CPU time per activity (ingest and the in-process client) and PostgreSQL's;
``--profile FILE`` writes a cProfile of the timed rounds, ``--callgrind-lib`` counts the timed round's instructions alone (see ``bench.attribution_cpu``'s
docstring for the library and the valgrind command line).
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

import uvloop

from bench.attribution_cpu import _backend_cpu, _BuildingProducer
from bench.ingest_throughput import BATCH, SECRET_KEY, TENANT, events_batch, prepare_tenant


async def _round(pg: Any, activities: int, callgrind: Any, profile: str | None) -> dict[str, Any]:
    import httpx
    from sqlalchemy import text

    from libs.common.collector import tune_garbage_collector
    from libs.common.db.engine import make_engine
    from libs.common.db.migrate import upgrade
    from libs.common.kafka.publisher import KafkaPublisher, OutgoingMessage, send_in_batches
    from libs.common.kafka.settings_events import SettingsChangeListener
    from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    producer = _BuildingProducer()

    async def publish(self: KafkaPublisher, messages: Sequence[OutgoingMessage]) -> None:
        await asyncio.gather(*await send_in_batches(producer, messages, self.batch_bytes))

    async def warm_up(self: KafkaPublisher, topics: Sequence[str], timeout_seconds: float = 30.0) -> None:
        return None

    def no_listener(self: SettingsChangeListener) -> None:
        return None  # no broker: the settings-changed listener would retry in the background

    KafkaPublisher.publish = publish  # type: ignore[method-assign]
    KafkaPublisher.warm_up = warm_up  # type: ignore[method-assign]
    SettingsChangeListener.start = no_listener  # type: ignore[method-assign]
    name = f"r_{uuid.uuid4().hex[:8]}"
    pg.psql(f'CREATE DATABASE "{name}"')
    url = pg.url(name)
    await asyncio.to_thread(upgrade, url)
    key = await prepare_tenant(url)
    settings = IngestSettings(
        runtime=RuntimeSettings(secret_key=SECRET_KEY),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1", enable_idempotence=False),
        database=DatabaseSettings(url=url),
    )
    app = create_app(settings)
    batches = [events_batch(b) for b in range(activities // BATCH + 1)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            (await client.post("/v1/events", content=batches[0])).raise_for_status()  # warm-up
            tune_garbage_collector()  # as ``libs.common.serve`` once the app has started
            published0 = producer.records
            pg_cpu0 = _backend_cpu(pg.process.pid)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            if callgrind is not None:
                callgrind.cg_start()
            for body in batches[1:]:
                (await client.post("/v1/events", content=body)).raise_for_status()
            if callgrind is not None:
                callgrind.cg_stop()
            if profiler and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            pg_cpu = _backend_cpu(pg.process.pid) - pg_cpu0
    engine = make_engine(DatabaseSettings(url=url), "bench")
    async with engine.connect() as conn:
        seen = (
            await conn.execute(
                text("SELECT count(*) FROM ingest_seen_events WHERE tenant_id = :t"), {"t": TENANT}
            )
        ).scalar_one()
    await engine.dispose()
    pg.psql(f'DROP DATABASE "{name}"')
    posted = len(batches) * BATCH - BATCH
    published = producer.records - published0
    assert published == posted, f"published {published} messages, expected exactly {posted}"
    assert seen == posted + BATCH, f"the ledger holds {seen} activities, expected exactly {posted + BATCH}"
    return {
        "activities": posted,
        "cpu_us": round(cpu / posted * 1e6, 1),
        "pg_cpu_us": round(pg_cpu / posted * 1e6, 1),
        "wall_s": round(wall, 2),
        "published": published,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--activities", type=int, default=5_000, help="a multiple of 1,000")
    parser.add_argument(
        "--profile", default=None, help="write cProfile stats of the timed rounds to FILE.<round>"
    )
    parser.add_argument(
        "--callgrind-lib",
        default=None,
        help="a shared library exporting cg_start and cg_stop (see bench.attribution_cpu)",
    )
    args = parser.parse_args(argv)
    from libs.common.embedded import EmbeddedPostgres

    base = Path(tempfile.mkdtemp(prefix="spm-ingest-cpu-"))
    pg = EmbeddedPostgres(base / "pg")
    pg.start()
    results = []
    try:
        callgrind = ctypes.CDLL(args.callgrind_lib) if args.callgrind_lib else None
        for r in range(args.rounds):
            row = {
                "round": r + 1,
                **uvloop.run(_round(pg, args.activities, callgrind, args.profile and f"{args.profile}.{r}")),
            }
            print(json.dumps(row), flush=True)
            results.append(row)
    finally:
        pg.stop()
    shutil.rmtree(base, ignore_errors=True)
    print(
        json.dumps(
            {
                "cpu_us_median": statistics.median(r["cpu_us"] for r in results),
                "cpu_us": [r["cpu_us"] for r in results],
                "pg_cpu_us_median": statistics.median(r["pg_cpu_us"] for r in results),
            }
        )
    )


if __name__ == "__main__":
    main()
