"""Scores, leaderboards and funnels: aggregation in SQL over the rollups the metrics service keeps."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.schemas import COUNTERS, Granularity, LeaderboardMetric

#: The length of each granularity's period, for "the period that contains a day".
PERIOD_SPAN = {
    Granularity.DAY: "1 day",
    Granularity.WEEK: "7 days",
    Granularity.MONTH: "1 month",
    Granularity.QUARTER: "3 months",
}

FUNNEL_COUNTERS = ("dials", "connects", "conversations", "meetings_booked", "meetings_held")

_COUNTER_LIST = ", ".join(f"m.{c}" for c in COUNTERS)


#: Where each level's entities are listed, for "does it exist": (table, id column).
_DIRECTORY = {"rep": ("ref_reps", "rep_id"), "team": ("ref_teams", "team_id")}


async def entity_latest_period(
    conn: AsyncConnection, tenant_id: str, level: str, entity_id: str, granularity: Granularity
) -> tuple[bool, date | None]:
    """Whether the rep or team exists, and the start of its latest period with data; one round trip."""
    table, column = _DIRECTORY[level]
    row = (
        await conn.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE tenant_id = :t AND {column} = :e AND NOT deleted) "
                "AS known, (SELECT max(period_start) FROM metric_rollups WHERE tenant_id = :t AND level = :level "
                "AND entity_id = :e AND granularity = :g) AS last"
            ),
            {"t": tenant_id, "level": level, "e": entity_id, "g": granularity.value},
        )
    ).one()
    last: date | None = row.last
    return bool(row.known), last


async def period_scores(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    level: str,
    entity_id: str,
    granularity: Granularity,
    first: date,
    last: date,
) -> list[dict[str, Any]]:
    """Score, counters and (for reps) the period stats per period starting in ``[first, last]``."""
    stats = (
        "s.team_percentile, s.baseline_score, s.change_vs_baseline"
        if level == "rep"
        else "NULL::float8 AS team_percentile, NULL::float8 AS baseline_score, NULL::float8 AS change_vs_baseline"
    )
    join = (
        "LEFT JOIN rep_period_stats s ON s.tenant_id = m.tenant_id AND s.granularity = m.granularity "
        "AND s.period_start = m.period_start AND s.rep_id = m.entity_id"
        if level == "rep"
        else ""
    )
    rows = await conn.execute(
        text(
            f"SELECT m.period_start, m.score, {_COUNTER_LIST}, {stats} FROM metric_rollups m {join} "
            "WHERE m.tenant_id = :t AND m.level = :level AND m.entity_id = :e AND m.granularity = :g "
            "AND m.period_start BETWEEN :first AND :last ORDER BY m.period_start"
        ),
        {
            "t": tenant_id,
            "level": level,
            "e": entity_id,
            "g": granularity.value,
            "first": first,
            "last": last,
        },
    )
    # Positional unpacking: attribute access on a Row by name was the largest cost of a
    # year of daily periods (13 counters x 365 rows).
    return [
        {
            "period_start": period_start,
            "score": round(float(score), 4),
            "counts": dict(zip(COUNTERS, counts, strict=True)),
            "team_percentile": team_percentile,
            "baseline_score": baseline_score,
            "change_vs_baseline": change_vs_baseline,
        }
        for period_start, score, *counts, team_percentile, baseline_score, change_vs_baseline in rows
    ]


async def leaderboard(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    granularity: Granularity,
    day: date | None,
    metric: LeaderboardMetric,
    team_id: str | None,
    limit: int,
) -> tuple[date | None, list[dict[str, Any]]]:
    """The period containing ``day`` (the latest with data when None) and its top ``limit`` reps.

    The period is the latest rollup period starting on or before ``day``; with ``team_id`` only
    reps who were members of the team at some point of that period are ranked.
    """
    # ``metric`` is an enum member, so the column name interpolated below is from a fixed list.
    column = metric.value
    rows = (
        await conn.execute(
            text(
                f"""
                WITH p AS (
                    SELECT max(period_start) AS ps FROM metric_rollups
                    WHERE tenant_id = :t AND level = 'rep' AND granularity = :g
                      AND (CAST(:day AS date) IS NULL OR period_start <= :day)
                )
                SELECT p.ps, r.entity_id AS rep_id, COALESCE(rr.name, '') AS name,
                       r.{column}::float8 AS value, r.score, s.team_percentile, s.change_vs_baseline,
                       rank() OVER (ORDER BY r.{column} DESC) AS rank
                FROM p
                JOIN metric_rollups r ON r.tenant_id = :t AND r.level = 'rep' AND r.granularity = :g
                                     AND r.period_start = p.ps
                LEFT JOIN ref_reps rr ON rr.tenant_id = r.tenant_id AND rr.rep_id = r.entity_id
                LEFT JOIN rep_period_stats s ON s.tenant_id = r.tenant_id AND s.granularity = r.granularity
                                            AND s.period_start = r.period_start AND s.rep_id = r.entity_id
                WHERE CAST(:team AS text) IS NULL OR EXISTS (
                    SELECT 1 FROM ref_team_memberships m
                    WHERE m.tenant_id = r.tenant_id AND m.rep_id = r.entity_id AND m.team_id = :team
                      AND NOT m.deleted AND m.valid_from < p.ps + CAST(CAST(:span AS text) AS interval)
                      AND (m.valid_to IS NULL OR m.valid_to > p.ps))
                ORDER BY rank, rep_id
                LIMIT :limit
                """
            ),
            {
                "t": tenant_id,
                "g": granularity.value,
                "day": day,
                "team": team_id,
                "span": PERIOD_SPAN[granularity],
                "limit": limit,
            },
        )
    ).all()
    if not rows:
        period = (
            await conn.execute(
                text(
                    "SELECT max(period_start) AS ps FROM metric_rollups WHERE tenant_id = :t AND level = 'rep' "
                    "AND granularity = :g AND (CAST(:day AS date) IS NULL OR period_start <= :day)"
                ),
                {"t": tenant_id, "g": granularity.value, "day": day},
            )
        ).one()
        return period.ps, []
    entries = [
        {
            "rank": int(row.rank),
            "rep_id": row.rep_id,
            "name": row.name,
            "value": round(float(row.value), 4),
            "score": round(float(row.score), 4),
            "team_percentile": row.team_percentile,
            "change_vs_baseline": row.change_vs_baseline,
        }
        for row in rows
    ]
    return rows[0].ps, entries


async def funnel_counts(
    conn: AsyncConnection, tenant_id: str, *, level: str, entity_id: str, first: date, last: date
) -> dict[str, int]:
    """The funnel counters summed over the day rollups in ``[first, last]``, plus deals won.

    A deal counts as won in range by its ``closed_at`` (UTC day); for a team, when its owner was a
    member of the team on that day.
    """
    sums = ", ".join(f"COALESCE(sum({c}), 0) AS {c}" for c in FUNNEL_COUNTERS)
    counters = (
        await conn.execute(
            text(
                f"SELECT {sums} FROM metric_rollups WHERE tenant_id = :t AND level = :level AND entity_id = :e "
                "AND granularity = 'day' AND period_start BETWEEN :first AND :last"
            ),
            {"t": tenant_id, "level": level, "e": entity_id, "first": first, "last": last},
        )
    ).one()
    owner = (
        "d.owner_rep_id = :e"
        if level == "rep"
        else """EXISTS (SELECT 1 FROM ref_team_memberships m
                    WHERE m.tenant_id = d.tenant_id AND m.rep_id = d.owner_rep_id AND m.team_id = :e
                      AND NOT m.deleted AND m.valid_from <= (d.closed_at AT TIME ZONE 'UTC')::date
                      AND (m.valid_to IS NULL OR m.valid_to > (d.closed_at AT TIME ZONE 'UTC')::date))"""
    )
    won = (
        await conn.execute(
            text(
                "SELECT count(*) AS n FROM ref_deals d WHERE d.tenant_id = :t AND NOT d.deleted AND d.is_won "
                "AND d.closed_at IS NOT NULL "
                "AND (d.closed_at AT TIME ZONE 'UTC')::date BETWEEN :first AND :last AND " + owner
            ),
            {"t": tenant_id, "e": entity_id, "first": first, "last": last},
        )
    ).one()
    out = {c: int(getattr(counters, c)) for c in FUNNEL_COUNTERS}
    out["deals_won"] = int(won.n)
    return out
