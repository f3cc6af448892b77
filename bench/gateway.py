"""Gateway read latency at volume, against a naive aggregate-at-query-time design.

Ours: ``activities``, ``attributions`` and ``metric_contributions`` are bulk-loaded with COPY
(consistent rows: every activity is attributed to one of 200 reps on 20 teams and has the
contribution the metrics service would write for it); ``metric_rollups`` (rep and team, every
granularity) and ``rep_period_stats`` are then aggregated from the contributions in SQL, as
the metrics service keeps them. ``spm run gateway`` serves them over HTTP.

Naive: one raw table ``naive_activities`` with the same rows and the obvious indexes, where
each question is answered by aggregating the raw rows at query time with the default scoring
weights, sent as SQL through asyncpg. The naive side skips HTTP, JSON and authentication,
which favours it.

Each round times ``samples`` sequential requests per question for ours, then for naive (the
order alternates between rounds); the figures are medians over rounds of p50 and p99.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.common import Engines, median, percentile, service_env, start_service, stop_services
from bench.pipeline import TENANT, _prepare_database
from services.gateway.schemas import COUNTERS

REPS = 200
TEAMS = 20
DAYS = 365
END = datetime(2026, 11, 21, tzinfo=UTC)
CHUNK = 100_000

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
SELECT rep_id, sum({_SCORE_SQL}) AS score, count(*) AS activities,
       rank() OVER (ORDER BY sum({_SCORE_SQL}) DESC) AS rank
FROM naive_activities, p
WHERE tenant_id = $1 AND occurred_at >= p.ps AT TIME ZONE 'UTC'
  AND occurred_at < (p.ps + interval '7 days') AT TIME ZONE 'UTC'
GROUP BY rep_id ORDER BY rank, rep_id LIMIT 50
"""
NAIVE_REP_SCORES = f"""
WITH last AS (SELECT max(occurred_at) AS at FROM naive_activities WHERE tenant_id = $1 AND rep_id = $2)
SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, sum({_SCORE_SQL}) AS score, count(*) AS activities,
       sum((kind = 'call')::int) AS dials, sum({_CONN_SQL}) AS connects,
       sum((kind = 'email' AND outcome = 'sent')::int) AS emails_sent,
       sum((kind = 'meeting' AND outcome = 'held')::int) AS meetings_held
FROM naive_activities, last
WHERE tenant_id = $1 AND rep_id = $2 AND occurred_at >= last.at - interval '399 days'
GROUP BY 1 ORDER BY 1
"""
NAIVE_LISTING = """
SELECT activity_id, kind, direction, outcome, occurred_at, duration_seconds, rep_id, team_id
FROM naive_activities WHERE tenant_id = $1 ORDER BY occurred_at DESC, activity_id DESC LIMIT 50
"""


def _rows(
    first: int, count: int, seed: int
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]]:
    rng = random.Random(seed + first)
    start = END - timedelta(days=DAYS)
    ingested = END
    zeros = dict.fromkeys(COUNTERS, 0)
    for n in range(first, first + count):
        kind, direction, outcome, duration, counters, score = SHAPES[rng.randrange(len(SHAPES))]
        rep = rng.randrange(REPS)
        activity_id = uuid.UUID(int=n + 1)
        at = start + timedelta(seconds=rng.randrange(DAYS * 86_400))
        rep_id, team_id = f"rep-{rep:03d}", f"team-{rep % TEAMS:02d}"
        deal = rng.randrange(REPS * 10)
        deal_id, account_id = f"deal-{deal:05d}", f"acc-{deal // 3:05d}"
        external_id = f"x-{n}"
        yield (
            (
                TENANT,
                activity_id,
                "bench",
                external_id,
                kind,
                direction,
                outcome,
                at,
                duration,
                0,
                None,
                None,
                False,
                '{"subject": "Follow-up"}',
                ingested,
            ),
            (
                TENANT,
                activity_id,
                1,
                "attributed",
                rep_id,
                team_id,
                account_id,
                deal_id,
                [],
                0.9,
                '{"rule_path": "deal.contact_match", "runners_up": []}',
                False,
                ingested,
                None,
                at,
                kind,
            ),
            (
                TENANT,
                activity_id,
                1,
                rep_id,
                team_id,
                deal_id,
                account_id,
                "attributed",
                at,
                at.date(),
                kind,
                [f"con-{deal}"],
                *({**zeros, "activities": 1, **counters}[c] for c in COUNTERS),
                score,
            ),
        )


ACTIVITY_COLUMNS = [
    "tenant_id",
    "activity_id",
    "source",
    "external_id",
    "kind",
    "direction",
    "outcome",
    "occurred_at",
    "duration_seconds",
    "revision",
    "thread_id",
    "ical_uid",
    "automated",
    "payload",
    "ingested_at",
]
ATTRIBUTION_COLUMNS = [
    "tenant_id",
    "activity_id",
    "version",
    "status",
    "rep_id",
    "team_id",
    "account_id",
    "deal_id",
    "secondary_deal_ids",
    "confidence",
    "explanation",
    "is_override",
    "decided_at",
    "parked_until",
    "occurred_at",
    "kind",
]
CONTRIBUTION_COLUMNS = [
    "tenant_id",
    "activity_id",
    "version",
    "rep_id",
    "team_id",
    "deal_id",
    "account_id",
    "status",
    "occurred_at",
    "day",
    "kind",
    "contact_ids",
    *COUNTERS,
    "score",
]


async def load(dsn: str, activities: int, seed: int = 5) -> dict[str, float]:
    """Bulk-load ``activities`` consistent rows and derive the rollups; returns the timings."""
    conn = await asyncpg.connect(dsn)
    # Binary COPY needs a binary jsonb codec: a version byte (1) and the JSON text.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + value.encode(),
        decoder=lambda data: data[1:].decode(),
        schema="pg_catalog",
        format="binary",
    )
    started = time.perf_counter()
    try:
        now = datetime.now(UTC)
        await conn.copy_records_to_table(
            "ref_teams",
            records=[(TENANT, f"team-{t:02d}", f"Team {t}", None, now, False) for t in range(TEAMS)],
        )
        await conn.copy_records_to_table(
            "ref_reps",
            columns=["tenant_id", "rep_id", "name", "emails", "updated_at"],
            records=[
                (TENANT, f"rep-{r:03d}", f"Rep {r}", [f"rep{r}@acme.example"], now) for r in range(REPS)
            ],
        )
        await conn.copy_records_to_table(
            "ref_team_memberships",
            records=[
                (
                    TENANT,
                    f"m-{r}",
                    f"rep-{r:03d}",
                    f"team-{r % TEAMS:02d}",
                    date(2020, 1, 1),
                    None,
                    now,
                    False,
                )
                for r in range(REPS)
            ],
        )
        for first in range(0, activities, CHUNK):
            rows = list(_rows(first, min(CHUNK, activities - first), seed))
            await conn.copy_records_to_table(
                "activities", columns=ACTIVITY_COLUMNS, records=[r[0] for r in rows]
            )
            await conn.copy_records_to_table(
                "attributions", columns=ATTRIBUTION_COLUMNS, records=[r[1] for r in rows]
            )
            await conn.copy_records_to_table(
                "metric_contributions", columns=CONTRIBUTION_COLUMNS, records=[r[2] for r in rows]
            )
        copied = time.perf_counter()
        sums = ", ".join(f"sum({c})" for c in COUNTERS)
        columns = ", ".join(COUNTERS)
        for level, entity in (("rep", "rep_id"), ("team", "team_id")):
            await conn.execute(
                f"""
                INSERT INTO metric_rollups (tenant_id, level, entity_id, granularity, period_start, {columns}, score)
                SELECT tenant_id, '{level}', {entity}, g.g, date_trunc(g.g, day)::date, {sums}, sum(score)
                FROM metric_contributions
                CROSS JOIN (VALUES ('day'), ('week'), ('month'), ('quarter')) AS g(g)
                WHERE tenant_id = $1
                GROUP BY tenant_id, {entity}, g.g, date_trunc(g.g, day)::date
                """,
                TENANT,
            )
        await conn.execute(
            """
            INSERT INTO rep_period_stats (tenant_id, granularity, period_start, rep_id, team_id, score,
                                          team_percentile, baseline_periods)
            SELECT r.tenant_id, r.granularity, r.period_start, r.entity_id, m.team_id, r.score,
                   percent_rank() OVER (PARTITION BY r.granularity, r.period_start, m.team_id ORDER BY r.score),
                   0
            FROM metric_rollups r
            JOIN ref_team_memberships m ON m.tenant_id = r.tenant_id AND m.rep_id = r.entity_id
            WHERE r.tenant_id = $1 AND r.level = 'rep'
            """,
            TENANT,
        )
        derived = time.perf_counter()
        await conn.execute(
            """
            CREATE TABLE naive_activities AS
            SELECT act.tenant_id, act.activity_id, a.rep_id, a.team_id, act.occurred_at, act.kind,
                   act.direction, act.outcome, act.duration_seconds
            FROM activities act JOIN attributions a USING (tenant_id, activity_id);
            CREATE INDEX naive_time ON naive_activities (tenant_id, occurred_at DESC, activity_id DESC);
            CREATE INDEX naive_rep ON naive_activities (tenant_id, rep_id, occurred_at);
            ANALYZE;
            """
        )
        naive = time.perf_counter()
    finally:
        await conn.close()
    return {
        "copy_seconds": copied - started,
        "rollups_seconds": derived - copied,
        "naive_table_seconds": naive - derived,
        "rows_per_s": activities / (copied - started),
    }


async def _time_ours(client: httpx.AsyncClient, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        t0 = time.perf_counter()
        response = await client.get(path)
        out.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return out


async def _time_naive(conn: asyncpg.Connection, queries: list[tuple[str, tuple[Any, ...]]]) -> list[float]:
    out = []
    for sql, args in queries:
        t0 = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        out.append(time.perf_counter() - t0)
        if not rows:
            raise RuntimeError("a naive query returned no rows")
    return out


async def _measure(gateway_port: int, read_key: str, dsn: str, samples: int, repeats: int) -> dict[str, Any]:
    reps = [f"rep-{(i * 37) % REPS:03d}" for i in range(samples)]
    ours_paths = {
        "leaderboard": ["/v1/leaderboard"] * samples,
        "rep_scores": [f"/v1/reps/{rep}/scores" for rep in reps],
        "activities": ["/v1/activities?limit=50"] * samples,
    }
    naive_queries: dict[str, list[tuple[str, tuple[Any, ...]]]] = {
        "leaderboard": [(NAIVE_LEADERBOARD, (TENANT,))] * samples,
        "rep_scores": [(NAIVE_REP_SCORES, (TENANT, rep)) for rep in reps],
        "activities": [(NAIVE_LISTING, (TENANT,))] * samples,
    }
    runs: dict[str, dict[str, list[dict[str, float]]]] = {q: {"ours": [], "naive": []} for q in ours_paths}
    conn = await asyncpg.connect(dsn)
    headers = {"Authorization": f"Bearer {read_key}"}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{gateway_port}", headers=headers, timeout=60
        ) as client:
            for question in ours_paths:  # warm both caches once
                await _time_ours(client, ours_paths[question][:3])
                await _time_naive(conn, naive_queries[question][:3])
            for round_ in range(repeats):
                order = ["ours", "naive"] if round_ % 2 == 0 else ["naive", "ours"]
                for question in ours_paths:
                    for side in order:
                        if side == "ours":
                            latencies = await _time_ours(client, ours_paths[question])
                        else:
                            latencies = await _time_naive(conn, naive_queries[question])
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
        f"  loaded in {loaded['copy_seconds']:.0f} s COPY + {loaded['rollups_seconds']:.0f} s rollups "
        f"+ {loaded['naive_table_seconds']:.0f} s naive table\n"
    )
    env = service_env(eng, database)
    env["GATEWAY_RATE_LIMIT_PER_MINUTE"] = "100000000"
    service = await asyncio.to_thread(start_service, "gateway", env, eng.base)
    try:
        questions = await _measure(service.port, keys["read"], dsn, samples, repeats)
    finally:
        stop_services([service])
    eng.postgres.psql(f'DROP DATABASE "{database}"')
    for question, row in questions.items():
        sys.stdout.write(
            f"  {question:<12} ours p50 {row['ours']['p50_ms']:.1f} p99 {row['ours']['p99_ms']:.1f} ms | "
            f"naive p50 {row['naive']['p50_ms']:.1f} p99 {row['naive']['p99_ms']:.1f} ms\n"
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
                q: {side: last[q][side]["p99_ms"] / first[q][side]["p99_ms"] for side in ("ours", "naive")}
                for q in first
            },
        }
    return section
