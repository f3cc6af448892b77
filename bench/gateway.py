"""Gateway read latency at volume, against a naive aggregate-at-query-time design.

Ours: ``activities``, ``attributions`` and ``metric_contributions`` are generated inside
PostgreSQL (``INSERT ... SELECT`` over ``generate_series``, every column a deterministic function
of the row number: each activity is attributed to one of 200 reps on 20 teams and has the
contribution the metrics service would write for it); ``metric_rollups`` (rep and team,
every granularity) and ``rep_period_stats`` are then aggregated from the contributions
in SQL, as the metrics service keeps them. The indexes the migrations define are built after
the load, then the tables are vacuumed and analysed. ``spm run gateway`` serves them over HTTP.

Naive: one raw table ``naive_activities`` with the same rows and the obvious indexes, where
each question is answered by aggregating the raw rows at query time with the default scoring
weights. It is measured twice: served over the same HTTP stack as the gateway
(``bench/gateway_naive.py``: uvicorn, FastAPI, an API-key check, JSON), which is the baseline of
the target, and as bare SQL through asyncpg (no HTTP, JSON or authentication), which favours it.

Each round times ``samples`` sequential requests per question for each side, the order of the
sides rotating between rounds; the figures are medians over rounds of p50 and p99.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.common import (
    Engines,
    median,
    percentile,
    service_env,
    start_process,
    start_service,
    stop_services,
)
from bench.pipeline import TENANT, _prepare_database
from services.gateway.schemas import COUNTERS

REPS = 200
TEAMS = 20
DAYS = 365
END = datetime(2026, 11, 21, tzinfo=UTC)

#: (kind, direction, outcome, duration, counters); the score is the default model's weights
#: (dial 1, connect 2, conversation 3, email sent 1, received 0.5, buyer reply bonus 2,
#: meeting held 3 plus the external meeting bonus 5).
SHAPES: tuple[tuple[str, str, str, int, dict[str, int], float], ...] = (
    (
        "call",
        "outbound",
        "connected",
        300,
        {"dials": 1, "connects": 1, "conversations": 1, "talk_seconds": 300},
        6.0,
    ),
    ("call", "outbound", "no_answer", 0, {"dials": 1}, 1.0),
    ("email", "outbound", "sent", 0, {"emails_sent": 1}, 1.0),
    ("email", "inbound", "received", 0, {"emails_received": 1, "buyer_replies": 1}, 2.5),
    ("meeting", "outbound", "held", 1800, {"meetings_held": 1}, 8.0),
)
_SCORE_SQL = (
    "CASE "
    + " ".join(f"WHEN kind = '{k}' AND outcome = '{o}' THEN {s}" for k, _, o, _, _, s in SHAPES)
    + " ELSE 0 END"
)
_CONN_SQL = "(kind = 'call' AND outcome = 'connected')::int"

NAIVE_LEADERBOARD = f"""
WITH p AS (SELECT date_trunc('week', max(occurred_at) AT TIME ZONE 'UTC') AS ps
           FROM naive_activities WHERE tenant_id = $1)
SELECT rep_id, sum({_SCORE_SQL})::float8 AS score, count(*) AS activities,
       rank() OVER (ORDER BY sum({_SCORE_SQL}) DESC) AS rank
FROM naive_activities, p
WHERE tenant_id = $1 AND occurred_at >= p.ps AT TIME ZONE 'UTC'
  AND occurred_at < (p.ps + interval '7 days') AT TIME ZONE 'UTC'
GROUP BY rep_id ORDER BY rank, rep_id LIMIT 50
"""
NAIVE_REP_SCORES = f"""
WITH last AS (SELECT max(occurred_at) AS at FROM naive_activities WHERE tenant_id = $1 AND rep_id = $2)
SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, sum({_SCORE_SQL})::float8 AS score, count(*) AS activities,
       sum((kind = 'call')::int) AS dials, sum({_CONN_SQL}) AS connects,
       sum((kind = 'email' AND outcome = 'sent')::int) AS emails_sent,
       sum((kind = 'meeting' AND outcome = 'held')::int) AS meetings_held
FROM naive_activities, last
WHERE tenant_id = $1 AND rep_id = $2 AND occurred_at >= last.at - interval '399 days'
GROUP BY 1 ORDER BY 1
"""
NAIVE_LISTING = """
SELECT activity_id, kind, direction, outcome, occurred_at, duration_seconds, rep_id, team_id
FROM naive_activities WHERE tenant_id = $1 ORDER BY occurred_at DESC, activity_id DESC LIMIT $2
"""
#: One rep's newest activities: what a manager opens before a 1:1.
NAIVE_REP_LISTING = """
SELECT activity_id, kind, direction, outcome, occurred_at, duration_seconds, rep_id, team_id
FROM naive_activities WHERE tenant_id = $1 AND rep_id = $2 ORDER BY occurred_at DESC, activity_id DESC LIMIT $3
"""


def _mod(seed: int, field: int, modulus: int) -> str:
    """A well-mixed, deterministic ``0 <= x < modulus`` for row ``n`` (PostgreSQL's 64-bit hash)."""
    return f"((hashint8extended(n, {seed * 10 + field}) % {modulus}) + {modulus}) % {modulus}"


def _shape_values() -> str:
    rows = []
    for i, (kind, direction, outcome, duration, counters, score) in enumerate(SHAPES):
        counts = {**dict.fromkeys(COUNTERS, 0), "activities": 1, **counters}
        values = ", ".join(str(counts[c]) for c in COUNTERS)
        rows.append(f"({i}, '{kind}', '{direction}', '{outcome}', {duration}, {values}, {score}::float8)")
    return f"(VALUES {', '.join(rows)}) AS s(shape, kind, direction, outcome, duration_seconds, {', '.join(COUNTERS)}, score)"


def generated_rows(activities: int, seed: int = 5) -> str:
    """``FROM`` clause of ``activities`` rows made by arithmetic on ``n``: the same rows every time.

    Columns: ``n``, ``activity_id`` (the UUID whose integer is n + 1), ``rep_id``, ``team_id``
    (rep n is on team n mod 20), ``deal_id``, ``account_id`` (deal d belongs to account d / 3),
    ``occurred_at`` (uniform over the 365 days before ``END``), ``day`` (its UTC date) and the
    shape's ``kind``, ``direction``, ``outcome``, ``duration_seconds``, counters and ``score``.
    """
    start = (END - timedelta(days=DAYS)).isoformat()
    return f"""
        (SELECT n, lpad(to_hex(n + 1), 32, '0')::uuid AS activity_id,
                {_mod(seed, 1, len(SHAPES))} AS shape,
                {_mod(seed, 2, REPS)} AS rep,
                {_mod(seed, 3, REPS * 10)} AS deal,
                timestamptz '{start}' + {_mod(seed, 4, DAYS * 86_400)} * interval '1 second' AS occurred_at
         FROM generate_series(0::bigint, {activities - 1}::bigint) AS n) AS g
        JOIN {_shape_values()} USING (shape)
        CROSS JOIN LATERAL (
            SELECT 'rep-' || lpad(g.rep::text, 3, '0') AS rep_id,
                   'team-' || lpad((g.rep % {TEAMS})::text, 2, '0') AS team_id,
                   'deal-' || lpad(g.deal::text, 5, '0') AS deal_id,
                   'acc-' || lpad((g.deal / 3)::text, 5, '0') AS account_id,
                   (g.occurred_at AT TIME ZONE 'UTC')::date AS day
        ) AS ids
    """


def _load_statements(activities: int, seed: int) -> dict[str, str]:
    """One ``INSERT ... SELECT`` per table the pipeline writes for an activity, as it writes them."""
    rows = generated_rows(activities, seed)
    ingested = f"timestamptz '{END.isoformat()}'"
    counters = ", ".join(COUNTERS)
    return {
        "activities": f"""
            INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome,
                                    occurred_at, duration_seconds, payload, ingested_at)
            SELECT '{TENANT}', activity_id, 'bench', 'x-' || n, kind, direction, outcome, occurred_at,
                   duration_seconds, '{{"subject": "Follow-up"}}'::jsonb, {ingested}
            FROM {rows}
        """,
        "attributions": f"""
            INSERT INTO attributions (tenant_id, activity_id, version, status, rep_id, team_id, account_id,
                                      deal_id, confidence, explanation, decided_at, occurred_at, kind)
            SELECT '{TENANT}', activity_id, 1, 'attributed', rep_id, team_id, account_id, deal_id, 0.9,
                   '{{"rule_path": "deal.contact_match", "runners_up": []}}'::jsonb, {ingested},
                   occurred_at, kind
            FROM {rows}
        """,
        "metric_contributions": f"""
            INSERT INTO metric_contributions (tenant_id, activity_id, version, rep_id, team_id, deal_id,
                                              account_id, status, occurred_at, day, kind, contact_ids,
                                              {counters}, score)
            SELECT '{TENANT}', activity_id, 1, rep_id, team_id, deal_id, account_id, 'attributed',
                   occurred_at, day, kind, ARRAY['con-' || g.deal], {counters}, score
            FROM {rows}
        """,
    }


LOADED_TABLES = ("activities", "attributions", "metric_contributions")
#: Every table the load writes in bulk: their indexes are built once, after it.
BULK_TABLES = (*LOADED_TABLES, "metric_rollups", "rep_period_stats")


async def _drop_indexes(conn: asyncpg.Connection) -> list[tuple[str, str, str | None]]:
    """Drop every index (primary keys included) of the loaded tables; returns how to rebuild each."""
    found = await conn.fetch(
        """
        SELECT i.tablename, i.indexname, i.indexdef, c.conname
        FROM pg_indexes i LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.contype = 'p'
        WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
        """,
        list(BULK_TABLES),
    )
    for row in found:
        if row["conname"]:
            await conn.execute(f'ALTER TABLE {row["tablename"]} DROP CONSTRAINT "{row["conname"]}"')
        else:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    return [(row["tablename"], row["indexdef"], row["conname"]) for row in found]


async def _rebuild(conn: asyncpg.Connection, indexes: list[tuple[str, str, str | None]]) -> None:
    for table, definition, constraint in indexes:
        await conn.execute(definition)
        if constraint:
            await conn.execute(
                f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" PRIMARY KEY USING INDEX "{constraint}"'
            )


_SESSION = "SET maintenance_work_mem = '512MB'; SET work_mem = '256MB'; SET synchronous_commit = off"


async def load(dsn: str, activities: int, seed: int = 5) -> dict[str, float]:
    """Generate ``activities`` consistent rows inside PostgreSQL and derive the read models.

    The indexes of the tables written in bulk (exactly those the migrations create) are dropped
    before the load and rebuilt after it, which is much faster than maintaining them row by
    row; the tables then hold what production holds. Returns the timings in seconds.
    """
    conns = [await asyncpg.connect(dsn) for _ in range(3)]
    conn = conns[0]
    try:
        for c in conns:
            await c.execute(_SESSION)
        started = time.perf_counter()
        await conn.execute(
            f"""
            INSERT INTO ref_teams (tenant_id, team_id, name, updated_at)
            SELECT $1, 'team-' || lpad(t::text, 2, '0'), 'Team ' || t, now()
            FROM generate_series(0, {TEAMS - 1}) AS t;
            INSERT INTO ref_reps (tenant_id, rep_id, name, emails, updated_at)
            SELECT $1, 'rep-' || lpad(r::text, 3, '0'), 'Rep ' || r, ARRAY['rep' || r || '@acme.example'], now()
            FROM generate_series(0, {REPS - 1}) AS r;
            INSERT INTO ref_team_memberships (tenant_id, membership_id, rep_id, team_id, valid_from, updated_at)
            SELECT $1, 'm-' || r, 'rep-' || lpad(r::text, 3, '0'), 'team-' || lpad((r % {TEAMS})::text, 2, '0'),
                   date '2020-01-01', now()
            FROM generate_series(0, {REPS - 1}) AS r
            """.replace("$1", f"'{TENANT}'")
        )
        indexes = await _drop_indexes(conn)
        statements = _load_statements(activities, seed)
        await asyncio.gather(*(c.execute(statements[t]) for c, t in zip(conns, LOADED_TABLES, strict=True)))
        inserted = time.perf_counter()
        await _derive_read_models(conns)
        derived = time.perf_counter()
        # Two builders: the machine has two cores.
        await asyncio.gather(_rebuild(conns[0], indexes[0::2]), _rebuild(conns[1], indexes[1::2]))
        indexed = time.perf_counter()
        await conn.execute(
            f"""
            CREATE TABLE naive_activities AS
            SELECT '{TENANT}'::text AS tenant_id, activity_id, rep_id, team_id, occurred_at, kind, direction,
                   outcome, duration_seconds
            FROM {generated_rows(activities, seed)};
            """
        )
        await asyncio.gather(
            conns[0].execute(
                "CREATE INDEX naive_time ON naive_activities (tenant_id, occurred_at DESC, activity_id DESC)"
            ),
            conns[1].execute("CREATE INDEX naive_rep ON naive_activities (tenant_id, rep_id, occurred_at)"),
        )
        naive = time.perf_counter()
        # What autovacuum would have done by now: statistics, hint bits and the visibility map.
        for table in (*LOADED_TABLES, "metric_rollups", "rep_period_stats", "naive_activities"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        vacuumed = time.perf_counter()
    finally:
        for c in conns:
            await c.close()
    return {
        "insert_seconds": inserted - started,
        "rollups_seconds": derived - inserted,
        "index_seconds": indexed - derived,
        "naive_table_seconds": naive - indexed,
        "vacuum_seconds": vacuumed - naive,
        "total_seconds": vacuumed - started,
        "activities_per_s": activities / (vacuumed - started),
    }


async def _derive_rollups(conn: asyncpg.Connection, by: str) -> None:
    """``metric_rollups`` of two levels at every granularity (rep and team).

    Days are aggregated once per pair; weeks, months and quarters are sums of days, as they are
    in the metrics service.
    """
    first, second = by.split(",")
    sums = ", ".join(f"sum({c}) AS {c}" for c in (*COUNTERS, "score"))
    columns = ", ".join((*COUNTERS, "score"))
    days = f"bench_{first}_days"
    await conn.execute(
        f"""
        CREATE TEMP TABLE {days} AS
        SELECT {first}_id, {second}_id, day, {sums} FROM metric_contributions GROUP BY {first}_id, {second}_id, day
        """
    )
    for level in (first, second):
        for granularity in ("day", "week", "month", "quarter"):
            period = f"date_trunc('{granularity}', day::timestamp)::date"
            await conn.execute(
                f"""
                INSERT INTO metric_rollups (tenant_id, level, entity_id, granularity, period_start, {columns})
                SELECT '{TENANT}', '{level}', {level}_id, '{granularity}', {period}, {sums}
                FROM {days} GROUP BY {level}_id, {period}
                """
            )
    await conn.execute(f"DROP TABLE {days}")


async def _derive_read_models(conns: list[asyncpg.Connection]) -> None:
    """``metric_rollups`` of the rep and team levels at every granularity and ``rep_period_stats``, as
    metrics keeps them (it keeps no account or deal rollups: ``definitions.STORED_LEVELS``)."""
    await _derive_rollups(conns[0], "rep,team")
    await conns[0].execute(
        f"""
        INSERT INTO rep_period_stats (tenant_id, granularity, period_start, rep_id, team_id, score,
                                      team_percentile, baseline_periods)
        SELECT r.tenant_id, r.granularity, r.period_start, r.entity_id, m.team_id, r.score,
               percent_rank() OVER (PARTITION BY r.granularity, r.period_start, m.team_id ORDER BY r.score),
               0
        FROM metric_rollups r
        JOIN ref_team_memberships m ON m.tenant_id = r.tenant_id AND m.rep_id = r.entity_id
        WHERE r.tenant_id = '{TENANT}' AND r.level = 'rep'
        """
    )


async def _time_http(client: httpx.AsyncClient, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        t0 = time.perf_counter()
        response = await client.get(path)
        out.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return out


async def _time_sql(conn: asyncpg.Connection, queries: list[tuple[str, tuple[Any, ...]]]) -> list[float]:
    out = []
    for sql, args in queries:
        t0 = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        out.append(time.perf_counter() - t0)
        if not rows:
            raise RuntimeError("a naive query returned no rows")
    return out


#: ``ours``: the gateway over HTTP; ``naive_http``: the naive design behind the same HTTP stack
#: (``bench/gateway_naive.py``); ``naive``: the naive SQL alone through asyncpg (no HTTP, JSON or auth).
SIDES = ("ours", "naive_http", "naive")


async def _measure(
    ports: dict[str, int], read_key: str, dsn: str, samples: int, repeats: int
) -> dict[str, Any]:
    reps = [f"rep-{(i * 37) % REPS:03d}" for i in range(samples)]
    paths = {
        "leaderboard": ["/v1/leaderboard"] * samples,
        "rep_scores": [f"/v1/reps/{rep}/scores" for rep in reps],
        "activities": ["/v1/activities?limit=50"] * samples,
        "rep_activities": [f"/v1/activities?limit=50&rep_id={rep}" for rep in reps],
    }
    naive_queries: dict[str, list[tuple[str, tuple[Any, ...]]]] = {
        "leaderboard": [(NAIVE_LEADERBOARD, (TENANT,))] * samples,
        "rep_scores": [(NAIVE_REP_SCORES, (TENANT, rep)) for rep in reps],
        "activities": [(NAIVE_LISTING, (TENANT, 50))] * samples,
        "rep_activities": [(NAIVE_REP_LISTING, (TENANT, rep, 50)) for rep in reps],
    }
    runs: dict[str, dict[str, list[dict[str, float]]]] = {q: {s: [] for s in SIDES} for q in paths}
    conn = await asyncpg.connect(dsn)
    headers = {"Authorization": f"Bearer {read_key}"}
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['ours']}", headers=headers, timeout=60) as ours,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports['naive_http']}", headers=headers, timeout=60
        ) as naive_http,
    ):
        clients = {"ours": ours, "naive_http": naive_http}

        async def timed(side: str, question: str, count: int) -> list[float]:
            if side == "naive":
                return await _time_sql(conn, naive_queries[question][:count])
            return await _time_http(clients[side], paths[question][:count])

        try:
            for question in paths:  # warm every side's caches once
                for side in SIDES:
                    await timed(side, question, 3)
            for round_ in range(repeats):
                # Rotate the order each round so drift hits every side alike.
                order = SIDES[round_ % 3 :] + SIDES[: round_ % 3]
                for question in paths:
                    for side in order:
                        latencies = await timed(side, question, samples)
                        runs[question][side].append(
                            {"p50_ms": median(latencies) * 1000, "p99_ms": percentile(latencies, 99) * 1000}
                        )
        finally:
            await conn.close()
    out: dict[str, Any] = {}
    for question, sides in runs.items():
        summary = {
            side: {k: median([r[k] for r in sides[side]]) for k in ("p50_ms", "p99_ms")} for side in sides
        }
        out[question] = {
            **summary,
            "p99_naive_http_over_ours": summary["naive_http"]["p99_ms"] / summary["ours"]["p99_ms"],
            "p99_naive_over_ours": summary["naive"]["p99_ms"] / summary["ours"]["p99_ms"],
            "runs": sides,
        }
    return out


async def _one_size(eng: Engines, activities: int, samples: int, repeats: int) -> dict[str, Any]:
    database, keys = await _prepare_database(eng)
    dsn = eng.postgres.url(database, driver="postgresql")
    sys.stdout.write(f"  loading {activities:,} activities\n")
    loaded = await load(dsn, activities)
    sys.stdout.write(
        f"  loaded in {loaded['total_seconds']:.0f} s: {loaded['insert_seconds']:.0f} s rows, "
        f"{loaded['rollups_seconds']:.0f} s rollups, {loaded['index_seconds']:.0f} s indexes, "
        f"{loaded['naive_table_seconds']:.0f} s naive table, {loaded['vacuum_seconds']:.0f} s vacuum\n"
    )
    env = service_env(eng, database)
    env["GATEWAY_RATE_LIMIT_PER_MINUTE"] = "100000000"
    naive_env = {
        **env,
        "NAIVE_DSN": dsn,
        "NAIVE_TENANT": TENANT,
        "NAIVE_KEY_SHA256": hashlib.sha256(keys["read"].encode()).hexdigest(),
    }
    services = [await asyncio.to_thread(start_service, "gateway", env, eng.base)]
    try:
        services.append(
            await asyncio.to_thread(
                start_process, "naive", ["-m", "bench.gateway_naive"], naive_env, eng.base
            )
        )
        ports = {"ours": services[0].port, "naive_http": services[1].port}
        questions = await _measure(ports, keys["read"], dsn, samples, repeats)
    finally:
        stop_services(services)
    eng.postgres.psql(f'DROP DATABASE "{database}"')
    for question, row in questions.items():
        sys.stdout.write(
            f"  {question:<12} p50/p99 ms: ours {row['ours']['p50_ms']:.1f}/{row['ours']['p99_ms']:.1f} | "
            f"naive over HTTP {row['naive_http']['p50_ms']:.1f}/{row['naive_http']['p99_ms']:.1f} | "
            f"naive SQL {row['naive']['p50_ms']:.1f}/{row['naive']['p99_ms']:.1f}\n"
        )
    return {"activities": activities, "load": loaded, "questions": questions}


def run_gateway(eng: Engines, sizes: list[int], samples: int, repeats: int) -> dict[str, Any]:
    """Every size in its own database, loaded, measured and dropped; p99 growth from the first to the last."""
    results = [asyncio.run(_one_size(eng, size, samples, repeats)) for size in sizes]
    section: dict[str, Any] = {"samples": samples, "repeats": repeats, "sizes": results}
    if len(results) > 1:
        first, last = results[0]["questions"], results[-1]["questions"]
        section["p99_growth"] = {
            "from": sizes[0],
            "to": sizes[-1],
            **{
                q: {side: last[q][side]["p99_ms"] / first[q][side]["p99_ms"] for side in SIDES} for q in first
            },
        }
    return section


def markdown_rows(section: dict[str, Any]) -> list[str]:
    """The gateway's rows of the results table: ours against the naive design over HTTP (the
    target's baseline) and against its bare SQL (no HTTP, JSON or authentication)."""
    lines = []
    for size in section["sizes"]:
        for question, row in size["questions"].items():
            o, h, n = row["ours"], row["naive_http"], row["naive"]
            lines.append(
                f"| gateway {question} at {size['activities']:,} activities, p50/p99 "
                f"| {o['p50_ms']:.1f}/{o['p99_ms']:.1f} ms "
                f"| naive over HTTP {h['p50_ms']:.1f}/{h['p99_ms']:.1f} ms "
                f"| {row['p99_naive_http_over_ours']:.2f} x | p99 < 15 ms, >= 10 x naive over HTTP |"
            )
            lines.append(
                f"| (same, naive SQL alone: no HTTP, JSON or auth) | | naive SQL {n['p50_ms']:.1f}/{n['p99_ms']:.1f} ms "
                f"| {row['p99_naive_over_ours']:.2f} x | |"
            )
    growth = section.get("p99_growth")
    if growth:
        for question in ("leaderboard", "rep_scores", "activities"):
            g = growth[question]
            lines.append(
                f"| p99 growth {growth['from']:,} -> {growth['to']:,}: {question} | {g['ours']:.2f} x "
                f"| naive over HTTP {g['naive_http']:.2f} x, naive SQL {g['naive']:.2f} x | | |"
            )
    return lines
