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

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from bench import cpu_harness as harness
from bench.attribution_cpu import TENANT, capture
from bench.cpu_harness import Raw
from bench.ingest_throughput import SECRET_KEY


def _decoder() -> Any:
    from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED

    return harness.decoder(ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, ACTIVITY_ATTRIBUTED)


async def _attribute(pg: Any, inputs: dict[str, list[Raw]]) -> list[Raw]:
    """What attribution publishes to ``activity-attributed`` for the captured inputs."""
    import services.attribution.handlers as attribution
    from libs.common.db.engine import make_engine
    from libs.common.kafka.publisher import OutgoingMessage
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant
    from libs.common.topics import ACTIVITY_ATTRIBUTED

    published: list[OutgoingMessage] = []

    async def capture_sends(producer: Any, messages: Sequence[OutgoingMessage]) -> list[Any]:
        published.extend(messages)
        return []

    attribution.send_in_batches = capture_sends  # type: ignore[attr-defined,assignment]
    name = await harness.migrated_database(pg, "a")
    engine = make_engine(DatabaseSettings(url=pg.url(name)), "attribution")
    async with engine.begin() as conn:
        await create_tenant(conn, TENANT, SECRET_KEY)
    deps = attribution.AttributionDeps(engine, harness.BuildingProducer(), "")
    decode = _decoder()
    for kind in ("crm", "activities"):
        raws = inputs[kind]
        for i in range(0, len(raws), 1000):
            await attribution.handle_batch(decode(raws[i : i + 1000]), deps)
    await engine.dispose()
    pg.psql(f'DROP DATABASE "{name}"')
    topic = ACTIVITY_ATTRIBUTED.physical("")
    return [(m.topic, m.key, m.value, m.envelope.to_headers()) for m in published if m.topic == topic]


async def _scalar(engine: Any, sql: str) -> int:
    from sqlalchemy import text

    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), {"t": TENANT})).scalar_one())


async def _expected_rep_activities(engine: Any) -> int:
    return await _scalar(
        engine,
        "SELECT count(*) FROM metric_contributions WHERE tenant_id = :t "
        "AND rep_id IS NOT NULL AND activities > 0",
    )


async def _counted(engine: Any) -> int:
    return await _scalar(
        engine,
        "SELECT COALESCE(sum(activities), 0) FROM metric_rollups WHERE tenant_id = :t "
        "AND level = 'rep' AND granularity = 'quarter'",
    )


async def _rounds(
    pg: Any, raws: list[Raw], rounds: int, batch: int, profile: str | None, callgrind: Any = None
) -> None:
    from libs.common.collector import tune_garbage_collector
    from libs.common.db.engine import make_engine
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant
    from libs.common.tenant_settings_store import TenantSettingsCache
    from services.metrics.adapters.scoring import ScoringModelCache
    from services.metrics.handlers import MetricsDeps, handle_batch

    decode = _decoder()
    template = await harness.migrated_database(pg, "tpl")
    engine = make_engine(DatabaseSettings(url=pg.url(template)), "metrics")
    async with engine.begin() as conn:
        await create_tenant(conn, TENANT, SECRET_KEY)
    await engine.dispose()
    tune_garbage_collector()
    for r in range(rounds):
        name = harness.round_database(pg, template)
        engine = make_engine(DatabaseSettings(url=pg.url(name)), "metrics")
        deps = MetricsDeps(engine, TenantSettingsCache(engine, 60), ScoringModelCache())

        async def handle(decoded: list[Any], deps: MetricsDeps = deps) -> None:
            await handle_batch(decoded, deps)

        events, clock = await harness.consume_timed(
            pg, raws, decode, handle, batch, harness.round_profile(profile, r), callgrind
        )
        expected, counted = await _expected_rep_activities(engine), await _counted(engine)
        await engine.dispose()
        pg.psql(f'DROP DATABASE "{name}"')
        assert counted == expected, f"rollups count {counted} activities, expected exactly {expected}"
        row = {"round": r + 1, "events": events, **clock.figures(events), "rep_activities": counted}
        harness.report(_results, row)


_results: list[dict[str, Any]] = []


def main(argv: list[str] | None = None) -> None:
    cli = harness.parser(__doc__, batches=True)
    cli.add_argument("--inputs", type=Path, default=None, help="ingest's captured messages (made if absent)")
    cli.add_argument("--messages", type=Path, default=None, help="attributed messages (made if absent)")
    args = cli.parse_args(argv)
    inputs = args.inputs or Path(tempfile.gettempdir()) / f"attribution-cpu-{args.activities}.msgpack"
    path = args.messages or Path(tempfile.gettempdir()) / f"metrics-cpu-{args.activities}.msgpack"
    with harness.embedded_postgres("spm-metrics-cpu-") as pg:
        if not path.exists():
            if not inputs.exists():
                capture(inputs, args.activities)
            attributed = uvloop.run(_attribute(pg, msgspec.msgpack.decode(inputs.read_bytes())))
            path.write_bytes(msgspec.msgpack.encode(attributed))
            print(f"kept {len(attributed)} attributed messages in {path}", flush=True)
        raws = [tuple(r) for r in msgspec.msgpack.decode(path.read_bytes())]
        callgrind = harness.callgrind_lib(args.callgrind_lib)
        uvloop.run(_rounds(pg, raws, args.rounds, args.batch, args.profile, callgrind))
    harness.print_summary(_results)


if __name__ == "__main__":
    main()
