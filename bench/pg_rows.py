"""What each index and the JSON column cost PostgreSQL per row: ``python -m bench.pg_rows``.

``bench.pg_writes`` counts what an event writes; this prices a row of the three tables written
per event (``attributions``, ``activities``, ``metric_contributions``). The rows are
``bench.pg_writes``' own (the demo tenant through attribution's and metrics' ``handle_batch``,
``--activities``), copied out of its database. For each table a copy of it (``LIKE ... INCLUDING
ALL``, the same indexes) is filled with ``--fill`` times those rows under new ids and vacuumed;
then each pass inserts the rows once more under new ids, in 1,000-row ``INSERT ... SELECT``
statements with the JSON column cast from its text (as the services send it), inside a
transaction that first drops the variant's indexes and is rolled back after (the copy is vacuumed
again): every pass meets the same table. Variants: every index; each index dropped alone; no
index; and every index with the JSON column already parsed, which prices its parse. The variants
alternate, ``--rounds`` times.

Prints, per variant, the backend's CPU per row (``/proc/<pid>/schedstat``: median and minimum
over the rounds; timings move with the machine's load, so read the differences between variants
of one run) and the WAL bytes per row (``pg_current_wal_insert_lsn``, median: the same in every
round but for a GIN index's, which depends on where its posting lists stand).
An index's price is ``every index`` minus ``without it``. The passes write into space the
vacuum freed, where the services' tables grow: a GIN index then rewrites posting lists in place
(``metric_contributions_engaged`` writes about 1.5 kB a row here, 190 B an entry when appended;
``bench.pg_writes`` has the growing table's WAL), and what extending a table costs (an ``INSERT``
writes each new page's zeros) is not here, nor the statements' own forms (``unnest`` of the
array parameters, ``ON CONFLICT``, ``RETURNING``): ``docs/performance.md``, "PostgreSQL per
row, nineteenth round". Linux only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import uvloop

from bench import cpu_harness as harness
from bench import pg_writes
from bench.attribution_cpu import captured

#: Each priced table and its JSON column (sent as text and cast, as the services do).
TABLES = {"attributions": "explanation", "activities": "payload", "metric_contributions": None}
BATCH = 1_000


def backend_ns(pid: int) -> int:
    """Nanoseconds the process ``pid`` has run on a CPU."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def _price(url: str, table: str, json_column: str | None, source: Path, fill: int, rounds: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute(f"CREATE TABLE s (LIKE {table})")
        if json_column:
            await conn.execute(f"ALTER TABLE s ALTER COLUMN {json_column} TYPE text")
        await conn.execute(f"COPY s FROM '{source}'")
        await conn.execute("ALTER TABLE s ADD COLUMN n serial PRIMARY KEY")
        # The parsed values beside, in rows under the TOAST threshold: not compressed, as the
        # services' rows are not (in ``s``, beside the text, they would be, and copied so).
        await conn.execute("CREATE TABLE sp AS SELECT n, NULL::jsonb AS parsed FROM s")
        if json_column:
            await conn.execute(f"UPDATE sp SET parsed = s.{json_column}::jsonb FROM s WHERE s.n = sp.n")
        await conn.execute("ALTER TABLE sp ADD PRIMARY KEY (n)")
        await conn.execute("VACUUM ANALYZE s, sp")
        rows = await conn.fetchval("SELECT count(*) FROM s")
        columns = [
            r[0]
            for r in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum",
                table,
            )
        ]
        await conn.execute(f"CREATE TABLE t (LIKE {table} INCLUDING ALL)")
        indexes = [r[0] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 't'")]

        def insert(salt: str, parsed: bool) -> str:
            values = [
                f"md5(s.activity_id::text || '{salt}')::uuid"
                if c == "activity_id"
                else ("sp.parsed" if parsed else f"CAST(s.{c} AS jsonb)")
                if c == json_column
                else f"s.{c}"
                for c in columns
            ]
            return (
                f"INSERT INTO t ({', '.join(columns)}) SELECT {', '.join(values)} "
                "FROM s JOIN sp USING (n) WHERE n > $1 AND n <= $2"
            )

        for k in range(fill):
            await conn.execute(insert(f"fill{k}", False), 0, rows)
        await conn.execute("VACUUM ANALYZE t")
        variants: dict[str, list[str]] = {"every index": []}
        variants.update({f"without {i}": [i] for i in indexes})
        variants["no index"] = list(indexes)
        if json_column:
            variants[f"every index, {json_column} parsed"] = []
        figures: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
        for r in range(rounds):
            for v, dropped in variants.items():
                # Rolled back after: the next pass meets the same table.
                transaction = conn.transaction()
                await transaction.start()
                for i in dropped:
                    # The primary key is a constraint's index: dropped as the constraint.
                    drop = "ALTER TABLE t DROP CONSTRAINT t_pkey" if i == "t_pkey" else f'DROP INDEX "{i}"'
                    await conn.execute(drop)
                wal = await conn.fetchval("SELECT pg_current_wal_insert_lsn()")
                ns = 0
                statement = insert(f"{r}:{v}", v.endswith(" parsed"))
                for lo in range(0, rows, BATCH):
                    before = backend_ns(pid)
                    await conn.execute(statement, lo, lo + BATCH)
                    ns += backend_ns(pid) - before
                size = await conn.fetchval("SELECT pg_current_wal_insert_lsn() - $1::pg_lsn", wal)
                await transaction.rollback()
                await conn.execute("VACUUM t")
                figures[v].append((ns / 1000 / rows, float(size) / rows))
        print(
            f"== {table}: {rows} rows a pass, the copy filled with {fill * rows}; indexes {', '.join(indexes)}"
        )
        for v, fs in figures.items():
            cpu = sorted(f[0] for f in fs)
            print(
                f"   {v:60s} CPU {statistics.median(cpu):6.2f} us a row (min {cpu[0]:6.2f}), "
                f"WAL {statistics.median(f[1] for f in fs):7.1f} B a row"
            )
        await conn.execute("DROP TABLE s, sp, t")
    finally:
        await conn.close()


async def _rows(pg: Any, messages: Any, copies: list[str], tables: list[Any], args: Any) -> None:
    """``bench.pg_writes``' run, its tables copied out (``copies``), then each table priced."""
    await pg_writes._run(pg, messages, BATCH, copies)
    name = await harness.migrated_database(pg, "rows")
    for table, json_column, source in tables:
        await _price(pg.url(name, driver="postgresql"), table, json_column, source, args.fill, args.rounds)


def main(argv: list[str] | None = None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--activities", type=int, default=5_000)
    cli.add_argument("--inputs", type=Path, default=None, help="ingest's captured messages (made if absent)")
    cli.add_argument("--fill", type=int, default=8, help="the copy holds this many times the rows")
    cli.add_argument("--rounds", type=int, default=7)
    cli.add_argument("--table", action="append", choices=sorted(TABLES), help="only these (default all)")
    args = cli.parse_args(argv)
    messages = captured(args.inputs, args.activities)
    dump = Path(tempfile.mkdtemp(prefix="spm-pg-rows-"))
    dump.chmod(0o777)  # the server's own user writes the copies
    tables = args.table or list(TABLES)
    with harness.embedded_postgres("spm-pg-rows-") as pg:
        pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        pg.psql("ALTER SYSTEM SET autovacuum = off")
        pg.stop()
        pg.start()
        copies = [f"COPY (SELECT * FROM {t}) TO '{dump / t}.copy'" for t in tables]
        uvloop.run(_rows(pg, messages, copies, [(t, TABLES[t], dump / f"{t}.copy") for t in tables], args))
    shutil.rmtree(dump, ignore_errors=True)


if __name__ == "__main__":
    main()
