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

``--lanes N`` handles each batch as ``ATTRIBUTION_PARTITION_LANES=N`` does: its messages are
split by the partition (of 4) the producer puts their key on, partition ``p`` in lane ``p % N``,
and the lanes' parts go through ``handle_batch`` at once, each a batch of about ``--batch``
(a batch then holds ``N`` times ``--batch`` messages, as the runner tops its lanes up). Compare
the rounds' wall seconds with ``--lanes 1``: how much of attribution's Python the lanes hide
behind its statements, without the broker, ingest and metrics beside it.

Instruction counts of the timed rounds alone, which the machine's load does not move: build
``cg.c``, holding ``#include <valgrind/callgrind.h>``, ``void cg_start(void) { CALLGRIND_ZERO_STATS;
CALLGRIND_START_INSTRUMENTATION; }`` and ``void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION;
CALLGRIND_DUMP_STATS_AT("timed"); }``, with ``gcc -O2 -shared -fPIC -o libcg.so cg.c``, then run
``PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no python -m bench.attribution_cpu
--rounds 1 --callgrind-lib ./libcg.so``: the dump's ``totals`` are the round's instructions in this
process (PostgreSQL is another process, not traced).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from bench import cpu_harness as harness
from bench.cpu_harness import Raw
from bench.ingest_throughput import SECRET_KEY

TENANT = "bench"


async def _capture(url: str, bootstrap: str, activities: int) -> tuple[list[Raw], list[Raw]]:
    """The CRM and activity messages ingest publishes for the pipeline bench's data."""
    import httpx
    import orjson

    from bench.pipeline import dataset
    from libs.common.db.engine import make_engine
    from libs.common.kafka.publisher import KafkaPublisher, OutgoingMessage
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant

    engine = make_engine(DatabaseSettings(url=url), "bench")
    async with engine.begin() as conn:
        created = await create_tenant(conn, TENANT, SECRET_KEY)
    await engine.dispose()
    key = dict(created["api_keys"])["ingest"]  # type: ignore[call-overload]
    captured: list[OutgoingMessage] = []

    async def publish(self: KafkaPublisher, messages: Sequence[OutgoingMessage]) -> None:
        captured.extend(messages)

    app = harness.ingest_app_without_broker(url, bootstrap, publish)
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


async def _rounds(
    pg: Any,
    messages: dict[str, list[Raw]],
    rounds: int,
    batch: int,
    profile: str | None,
    callgrind: Any = None,
    lanes: int = 1,
) -> None:
    from libs.common.collector import collector_paused, tune_garbage_collector
    from libs.common.db.engine import make_engine
    from libs.common.erasures import ErasureListCache
    from libs.common.kafka.partitioning import murmur2
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant
    from libs.common.tenant_settings_store import TenantSettingsCache
    from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
    from services.attribution.erasure import ErasureScreen
    from services.attribution.handlers import AttributionDeps, handle_batch

    decode = harness.decoder(ACTIVITY_INGESTED, CRM_ENTITY_CHANGED)

    async def deps_for(url: str) -> tuple[AttributionDeps, Any]:
        engine = make_engine(DatabaseSettings(url=url), "attribution")
        deps = AttributionDeps(
            engine,
            harness.BuildingProducer(),
            "",
            5_000,
            TenantSettingsCache(engine, 60),
            ErasureScreen(ErasureListCache(engine, SECRET_KEY, 60)),
        )
        return deps, engine

    template = await harness.migrated_database(pg, "tpl")
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
        name = harness.round_database(pg, template)
        deps, engine = await deps_for(pg.url(name))

        async def handle(decoded: list[Any], deps: AttributionDeps = deps) -> None:
            if lanes == 1:
                await handle_batch(decoded, deps)
                return
            parts: dict[int, list[Any]] = {}
            for m in decoded:
                parts.setdefault((murmur2(m.key) & 0x7FFFFFFF) % 4 % lanes, []).append(m)
            await asyncio.gather(*(handle_batch(part, deps) for part in parts.values()))

        events, clock = await harness.consume_timed(
            pg, acts, decode, handle, batch * lanes, harness.round_profile(profile, r), callgrind
        )
        published = deps.producer.records
        await engine.dispose()
        pg.psql(f'DROP DATABASE "{name}"')
        row = {"round": r + 1, "activities": events, **clock.figures(events), "published": published}
        harness.report(_results, row)


def captured(path: Path | None, activities: int) -> Any:
    """Ingest's captured messages for ``activities``: ``path``, or the shared file in the temp
    folder, made (``capture``) when absent."""
    path = path or Path(tempfile.gettempdir()) / f"attribution-cpu-{activities}.msgpack"
    if not path.exists():
        capture(path, activities)
    return msgspec.msgpack.decode(path.read_bytes())


_results: list[dict[str, Any]] = []


def main(argv: list[str] | None = None) -> None:
    cli = harness.parser(__doc__, batches=True)
    cli.add_argument("--messages", type=Path, default=None, help="captured messages (made if absent)")
    cli.add_argument("--lanes", type=int, default=1, help="partitions handled at once (see above)")
    args = cli.parse_args(argv)
    messages = captured(args.messages, args.activities)
    with harness.embedded_postgres("spm-attr-cpu-") as pg:
        # On uvloop, as ``spm run attribution`` (``libs.common.serve``).
        callgrind = harness.callgrind_lib(args.callgrind_lib)
        uvloop.run(_rounds(pg, messages, args.rounds, args.batch, args.profile, callgrind, args.lanes))
    harness.print_summary(_results)


if __name__ == "__main__":
    main()
