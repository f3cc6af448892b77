"""What PostgreSQL writes per event, by table, index and statement: ``python -m bench.pg_writes``.

Counts, not timings, so that two checkouts compare on a shared machine: the bench's demo tenant as
ingest publishes it (``bench.attribution_cpu``'s captured file, ``--inputs``) goes through
attribution's ``handle_batch`` (the CRM messages, then the activities in batches of ``--batch``),
and the ``activity-attributed`` messages it publishes through metrics' ``handle_batch`` in batches
of ``--batch``, on one embedded PostgreSQL started with ``pg_stat_statements`` and without
autovacuum (its passes would add WAL at times that depend on the machine's speed). For each of
the two phases (attribution's activities, metrics) it prints, per event:

* WAL records and bytes (``pg_walinspect``: ``pg_get_wal_records_info`` for the totals, each
  record counted once under the relation of its first block by ``pg_get_wal_block_info``;
  records without a block, commits mostly, under ``-``);
* rows inserted, updated (HOT or not) and deleted per table (``pg_stat_user_tables``);
* statements: calls per batch, rows and WAL bytes per event of each (``pg_stat_statements``).

Metrics' last batch is held back: the refresher's first pass over the tenant (``refresh_tenant``
as of the last activity) runs before it, then one after it and one with nothing new since, each
measured per refresh rather than per event.

``--json FILE`` writes the figures. Deterministic for the same code and inputs but for the order
of rows in a batch the broker would have given (none here: the messages are replayed in order).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop

from bench import cpu_harness as harness
from bench.attribution_cpu import TENANT, captured
from bench.cpu_harness import Raw
from bench.ingest_throughput import SECRET_KEY

_WAL_BY_RELATION = """
WITH blocks AS (
    SELECT DISTINCT ON (start_lsn) start_lsn, reltablespace, relfilenode
    FROM pg_get_wal_block_info($1::text::pg_lsn, $2::text::pg_lsn)
    WHERE reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY start_lsn, block_id
), recs AS (
    SELECT start_lsn, record_length FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn)
)
SELECT COALESCE(pg_filenode_relation(
           CASE WHEN b.reltablespace = (SELECT oid FROM pg_tablespace WHERE spcname = 'pg_default')
                THEN 0 ELSE b.reltablespace END, b.relfilenode)::regclass::text,
           CASE WHEN b.relfilenode IS NULL THEN '-' ELSE 'other' END) AS rel,
       count(*), sum(r.record_length)
FROM recs r LEFT JOIN blocks b USING (start_lsn)
GROUP BY 1 ORDER BY 3 DESC
"""

_WAL_BY_KIND = """
SELECT resource_manager, split_part(record_type, ' ', 1), count(*), sum(record_length)
FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn) GROUP BY 1, 2 ORDER BY 4 DESC
"""

_TABLES = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname
"""

_STATEMENTS = """
SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 110), calls, rows, wal_records, wal_bytes,
       total_exec_time, temp_blks_written
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%pg_get_wal%' AND query NOT ILIKE '%wal_lsn%'
ORDER BY wal_bytes DESC, calls DESC
"""


async def _snapshot(url: str) -> tuple[str, dict[str, tuple[int, ...]]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        lsn = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        await conn.execute("SELECT pg_stat_force_next_flush()")
        rows = await conn.fetch(_TABLES)
        return lsn, {r[0]: tuple(r[1:]) for r in rows}
    finally:
        await conn.close()


async def _phase_figures(
    url: str, start: tuple[str, dict[str, tuple[int, ...]]], events: int, batches: int
) -> dict[str, Any]:
    import asyncpg

    end = await _snapshot(url)
    conn = await asyncpg.connect(url)
    try:
        wal = await conn.fetch(_WAL_BY_RELATION, start[0], end[0])
        statements = await conn.fetch(_STATEMENTS)
        kinds = await conn.fetch(_WAL_BY_KIND, start[0], end[0])
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()
    records = sum(r[1] for r in wal)
    size = sum(r[2] for r in wal)
    tables = {}
    for name, now in end[1].items():
        before = start[1].get(name, (0, 0, 0, 0))
        delta = [a - b for a, b in zip(now, before, strict=True)]
        if any(delta):
            tables[name] = {
                k: round(v / events, 3) for k, v in zip(("ins", "upd", "hot_upd", "del"), delta, strict=True)
            }
    return {
        "events": events,
        "wal_records_per_event": round(records / events, 3),
        "wal_bytes_per_event": round(size / events, 1),
        "wal_by_relation": {r[0]: [round(r[1] / events, 3), round(r[2] / events, 1)] for r in wal},
        "wal_by_kind": {f"{r[0]}/{r[1]}": [round(r[2] / events, 3), round(r[3] / events, 1)] for r in kinds},
        "tables": tables,
        "statements": [
            {
                "query": r[0],
                "calls_per_batch": round(r[1] / batches, 2),
                "rows_per_event": round(r[2] / events, 3),
                "wal_records_per_event": round(r[3] / events, 3),
                "wal_bytes_per_event": round(float(r[4]) / events, 1),
                # Timings, unlike the counts, move with the machine's load: for ranking statements.
                "exec_us_per_event": round(r[5] * 1000 / events, 1),
                "temp_blocks_written": r[6],
            }
            for r in statements
        ],
    }


async def _run(pg: Any, inputs: dict[str, list[Raw]], batch: int, queries: Sequence[str]) -> dict[str, Any]:
    from sqlalchemy import text

    import services.attribution.handlers as attribution
    from libs.common.collector import collector_paused
    from libs.common.db.engine import make_engine
    from libs.common.kafka.publisher import OutgoingMessage
    from libs.common.settings import DatabaseSettings
    from libs.common.tenancy import create_tenant
    from libs.common.tenant_settings_store import TenantSettingsCache
    from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
    from services.metrics.adapters.scoring import ScoringModelCache
    from services.metrics.handlers import MetricsDeps
    from services.metrics.handlers import handle_batch as metrics_batch
    from services.metrics.refresher import refresh_tenant

    published: list[OutgoingMessage] = []

    async def capture_sends(producer: Any, messages: Sequence[OutgoingMessage]) -> list[Any]:
        published.extend(messages)
        return []

    attribution.send_in_batches = capture_sends  # type: ignore[attr-defined,assignment]
    decode = harness.decoder(ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, ACTIVITY_ATTRIBUTED)
    name = await harness.migrated_database(pg, "w")
    url, plain = pg.url(name), pg.url(name, driver="postgresql")
    pg.psql(
        "CREATE EXTENSION IF NOT EXISTS pg_walinspect; CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        name,
    )
    engine = make_engine(DatabaseSettings(url=url), "attribution")
    async with engine.begin() as conn:
        await create_tenant(conn, TENANT, SECRET_KEY)
    deps = attribution.AttributionDeps(
        engine, harness.BuildingProducer(), "", 5_000, TenantSettingsCache(engine, 60)
    )
    crm = inputs["crm"]
    for i in range(0, len(crm), 500):
        with collector_paused():
            await attribution.handle_batch(decode(crm[i : i + 500]), deps)
    await engine.dispose()  # its backends exit and report their statistics
    engine = make_engine(DatabaseSettings(url=url), "attribution")
    deps = replace(deps, engine=engine, settings=TenantSettingsCache(engine, 60))
    pg.psql("ANALYZE", name)
    pg.psql("SELECT pg_stat_statements_reset()", name)
    acts = inputs["activities"]
    start = await _snapshot(plain)
    for i in range(0, len(acts), batch):
        await attribution.handle_batch(decode(acts[i : i + batch]), deps)
    await engine.dispose()
    batches = -(-len(acts) // batch)
    out = {"attribution": await _phase_figures(plain, start, len(acts), batches)}
    topic = ACTIVITY_ATTRIBUTED.physical("")
    raws = [(m.topic, m.key, m.value, m.envelope.to_headers()) for m in published if m.topic == topic]
    engine = make_engine(DatabaseSettings(url=url), "metrics")
    mdeps = MetricsDeps(engine, TenantSettingsCache(engine, 60), ScoringModelCache())
    # All but the last batch, the refresher's first pass, the last batch, then two more passes:
    # one after those events and one with nothing new. Refreshes as of the last activity, figures
    # per refresh rather than per event.
    last = max(0, (len(raws) - 1) // batch * batch)
    start = await _snapshot(plain)
    for i in range(0, last, batch):
        await metrics_batch(decode(raws[i : i + batch]), mdeps)
    await engine.dispose()
    out["metrics"] = await _phase_figures(plain, start, last, -(-last // batch))
    async with engine.connect() as conn:
        now = (await conn.execute(text("SELECT max(occurred_at) FROM metric_contributions"))).scalar_one()
    for phase in (
        "refresh, first",
        "metrics, last batch",
        "refresh after the last batch",
        "refresh, nothing new",
    ):
        start = await _snapshot(plain)
        if phase == "metrics, last batch":
            await metrics_batch(decode(raws[last:]), mdeps)
        else:
            async with engine.begin() as conn:
                await refresh_tenant(conn, TENANT, now)
        await engine.dispose()
        events = len(raws) - last if phase == "metrics, last batch" else 1
        out[phase] = await _phase_figures(plain, start, events, 1)
    for sql in queries:
        print(sql, "->", pg.psql(sql, name).strip(), flush=True)
    pg.psql(f'DROP DATABASE "{name}"')
    return out


def _print(figures: dict[str, Any]) -> None:
    for phase, f in figures.items():
        print(
            f"== {phase}: {f['events']} events, {f['wal_records_per_event']} WAL records and "
            f"{f['wal_bytes_per_event']} B per event"
        )
        for rel, (records, size) in f["wal_by_relation"].items():
            print(f"   {rel:48s} {records:8.3f} rec {size:9.1f} B")
        for kind, (records, size) in f["wal_by_kind"].items():
            print(f"   {kind:48s} {records:8.3f} rec {size:9.1f} B")
        for table, t in f["tables"].items():
            print(
                f"   {table:48s} ins {t['ins']:.3f} upd {t['upd']:.3f} hot {t['hot_upd']:.3f} del {t['del']:.3f}"
            )
        for s in f["statements"][:25]:
            print(
                f"   {s['calls_per_batch']:7.2f}/batch rows {s['rows_per_event']:7.3f} "
                f"wal {s['wal_records_per_event']:6.3f} rec {s['wal_bytes_per_event']:8.1f} B "
                f"{s['exec_us_per_event']:7.1f} us tmp {s['temp_blocks_written']}  {s['query']}"
            )


def main(argv: list[str] | None = None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--activities", type=int, default=5_000)
    cli.add_argument("--batch", type=int, default=1_000)
    cli.add_argument("--inputs", type=Path, default=None, help="ingest's captured messages (made if absent)")
    cli.add_argument("--json", type=Path, default=None)
    cli.add_argument("--query", action="append", default=[], help="SQL to run on the database at the end")
    args = cli.parse_args(argv)
    messages = captured(args.inputs, args.activities)
    with harness.embedded_postgres("spm-pg-writes-") as pg:
        pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        pg.psql("ALTER SYSTEM SET autovacuum = off")
        pg.psql("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
        pg.stop()
        pg.start()
        figures = uvloop.run(_run(pg, messages, args.batch, args.query))
    _print(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
