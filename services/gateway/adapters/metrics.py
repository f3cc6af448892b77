"""Scores, leaderboards and funnels: aggregation in SQL over the rollups the metrics service keeps."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters import goals, hierarchy
from services.gateway.schemas import COUNTERS, Granularity, LeaderboardMetric

#: The length of each granularity's period, for "the period that contains a day".
PERIOD_SPAN = {
    Granularity.DAY: "1 day",
    Granularity.WEEK: "7 days",
    Granularity.MONTH: "1 month",
    Granularity.QUARTER: "3 months",
}

FUNNEL_COUNTERS = (
    "activities",
    "dials",
    "connects",
    "conversations",
    "meetings_booked",
    "meetings_held",
    "emails_sent",
    "buyer_replies",
)

_COALESCED_COUNTERS = ", ".join(f"COALESCE(m.{c}, 0)" for c in COUNTERS)


#: Where each level's entities are listed, for "does it exist": (table, id column).
_DIRECTORY = {"rep": ("ref_reps", "rep_id"), "team": ("ref_teams", "team_id")}


async def entity_latest_period(
    conn: AsyncConnection, tenant_id: str, level: str, entity_id: str, granularity: Granularity
) -> tuple[bool, date | None]:
    """Whether the rep or team exists, and the start of its latest period with data; one round trip.

    A team's data includes every team below it. A rep or team the CRM deleted is known while it
    has figures: a rep who left keeps what she did before (docs/attribution.md, "A rep who left").
    """
    table, column = _DIRECTORY[level]
    entities = "SELECT team_id FROM subtree" if level == "team" else "SELECT CAST(:e AS text)"
    row = (
        await conn.execute(
            text(
                f"WITH RECURSIVE {hierarchy.SUBTREE} "
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE tenant_id = :t AND {column} = :e AND NOT deleted) "
                "AS known, (SELECT max(period_start) FROM metric_rollups WHERE tenant_id = :t AND level = :level "
                f"AND entity_id IN ({entities}) AND granularity = :g) AS last"
            ),
            {
                "t": tenant_id,
                "level": level,
                "e": entity_id,
                "team": entity_id if level == "team" else None,
                "g": granularity.value,
            },
        )
    ).one()
    last: date | None = row.last
    return bool(row.known) or last is not None, last


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
    """Score, counters and (for reps) the period stats per period starting in ``[first, last]``.

    A team's figures are the sums over the team and every team below it.
    """
    if level == "team":
        return await _team_period_scores(conn, tenant_id, entity_id, granularity, first, last)
    # A period of the rep's is one with figures, or one the metrics service measured her in: a
    # rostered rep's silent period (a zero row of rep_period_stats) of which the tenant has figures
    # (before its first data nothing was captured: no silence to show), or a goal measured in it
    # (the week in progress on Monday morning). Silence is a figure: it is listed with zeros.
    rows = await conn.execute(
        text(
            "WITH periods AS ("
            "SELECT period_start FROM metric_rollups WHERE tenant_id = :t AND level = 'rep' "
            "AND entity_id = :e AND granularity = :g AND period_start BETWEEN :first AND :last "
            "UNION SELECT s.period_start FROM rep_period_stats s WHERE s.tenant_id = :t AND s.granularity = :g "
            "AND s.rep_id = :e AND s.period_start BETWEEN :first AND :last AND EXISTS (SELECT 1 FROM "
            "metric_rollups x WHERE x.tenant_id = :t AND x.level = 'rep' AND x.granularity = :g "
            "AND x.period_start = s.period_start) "
            "UNION SELECT period_start FROM goal_attainment WHERE tenant_id = :t AND granularity = :g "
            "AND rep_id = :e AND period_start BETWEEN :first AND :last) "
            f"SELECT p.period_start, COALESCE(m.score, 0), {_COALESCED_COUNTERS}, "
            "s.team_percentile, s.baseline_score, s.change_vs_baseline, s.recency_score "
            "FROM periods p LEFT JOIN metric_rollups m ON m.tenant_id = :t AND m.level = 'rep' "
            "AND m.entity_id = :e AND m.granularity = :g AND m.period_start = p.period_start "
            "LEFT JOIN rep_period_stats s ON s.tenant_id = :t AND s.granularity = :g "
            "AND s.period_start = p.period_start AND s.rep_id = :e ORDER BY p.period_start"
        ),
        {"t": tenant_id, "e": entity_id, "g": granularity.value, "first": first, "last": last},
    )
    attained = await goals.rep_attainment(conn, tenant_id, entity_id, granularity.value, first, last)
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
            "goals": attained.get(period_start, []),
            "recency_score": recency_score,
        }
        for period_start, score, *counts, team_percentile, baseline_score, change_vs_baseline, recency_score in rows
    ]


async def _team_period_scores(
    conn: AsyncConnection, tenant_id: str, team_id: str, granularity: Granularity, first: date, last: date
) -> list[dict[str, Any]]:
    sums = ", ".join(f"sum(m.{c})" for c in COUNTERS)
    rows = await conn.execute(
        text(
            f"WITH RECURSIVE {hierarchy.SUBTREE} "
            f"SELECT m.period_start, sum(m.score), {sums} FROM metric_rollups m "
            "WHERE m.tenant_id = :t AND m.level = 'team' AND m.entity_id IN (SELECT team_id FROM subtree) "
            "AND m.granularity = :g AND m.period_start BETWEEN :first AND :last "
            "GROUP BY m.period_start ORDER BY m.period_start"
        ),
        {"t": tenant_id, "team": team_id, "g": granularity.value, "first": first, "last": last},
    )
    return [
        {
            "period_start": period_start,
            "score": round(float(score), 4),
            "counts": dict(zip(COUNTERS, (int(c) for c in counts), strict=True)),
            "team_percentile": None,
            "baseline_score": None,
            "change_vs_baseline": None,
            "goals": [],
            "recency_score": None,
        }
        for period_start, score, *counts in rows
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
    manager_id: str | None = None,
) -> tuple[date | None, list[dict[str, Any]]]:
    """The period containing ``day`` (the latest with data when None) and its top ``limit`` reps.

    The period is the latest rollup period starting on or before ``day``. Every active rep who
    was a member (of ``team_id`` or a team below it, or of any team) at some point of the period
    is ranked, with zeros when silent, as is every rep with figures (a counted activity or a
    value; all-zero rows left by work re-attributed elsewhere are none). With ``team_id`` a rep's
    figures are what they earned on that team and the teams below it (``team_rep`` rollups),
    so a rep who moved mid-period counts only that part; without, the rep's whole figures.
    ``manager_id`` keeps the reps that manager manages, directly or not.
    """
    # ``metric`` is an enum member, so the column name interpolated below is from a fixed list.
    column = metric.value
    rows = (
        await conn.execute(
            text(
                f"""
                WITH RECURSIVE {hierarchy.SUBTREE}, {hierarchy.REPORTS},
                p AS (
                    SELECT ps, ps + CAST(CAST(:span AS text) AS interval) AS pe FROM (
                        SELECT max(period_start) AS ps FROM metric_rollups
                        WHERE tenant_id = :t AND level = 'rep' AND granularity = :g
                          AND (CAST(:day AS date) IS NULL OR period_start <= :day)) latest
                ), figures AS (
                    SELECT split_part(r.entity_id, :sep, 2) AS rep_id, sum(r.{column}) AS value,
                           sum(r.score) AS score, sum(r.activities) AS activities
                    FROM metric_rollups r, p
                    WHERE CAST(:team AS text) IS NOT NULL AND r.tenant_id = :t AND r.level = 'team_rep'
                      AND r.granularity = :g AND r.period_start = p.ps
                      AND split_part(r.entity_id, :sep, 1) IN (SELECT team_id FROM subtree)
                    GROUP BY 1
                    UNION ALL
                    SELECT r.entity_id, r.{column}, r.score, r.activities FROM metric_rollups r, p
                    WHERE CAST(:team AS text) IS NULL AND r.tenant_id = :t AND r.level = 'rep'
                      AND r.granularity = :g AND r.period_start = p.ps
                ), on_team AS (
                    SELECT DISTINCT m.rep_id FROM ref_team_memberships m, p
                    WHERE m.tenant_id = :t AND NOT m.deleted
                      AND (CAST(:team AS text) IS NULL OR m.team_id IN (SELECT team_id FROM subtree))
                      AND m.valid_from < p.pe AND (m.valid_to IS NULL OR m.valid_to > p.ps)
                ), board AS (
                    -- Every active member, silent ones included, and whoever has figures: a
                    -- counted activity or a value, not the zeros a re-attribution leaves behind
                    -- (work moved to another team by a move synced late).
                    SELECT t.rep_id FROM on_team t
                    WHERE NOT EXISTS (
                        SELECT 1 FROM ref_reps x WHERE x.tenant_id = :t AND x.rep_id = t.rep_id
                          AND (NOT x.active OR x.deleted OR x.merged_into IS NOT NULL))
                    UNION
                    SELECT f.rep_id FROM figures f WHERE f.activities <> 0 OR f.value <> 0 OR f.score <> 0
                )
                SELECT p.ps, b.rep_id, COALESCE(rr.name, '') AS name,
                       COALESCE(f.value, 0)::float8 AS value, COALESCE(f.score, 0) AS score,
                       COALESCE(f.activities, 0) AS activities, s.team_percentile, s.change_vs_baseline,
                       s.recency_score,
                       s.insufficient_data, rank() OVER (ORDER BY COALESCE(f.value, 0) DESC) AS rank,
                       {", ".join(f"g.{c} AS goal_{c}" for c in goals.ATTAINMENT_COLUMNS)}
                FROM p CROSS JOIN board b
                LEFT JOIN figures f ON f.rep_id = b.rep_id
                LEFT JOIN ref_reps rr ON rr.tenant_id = :t AND rr.rep_id = b.rep_id
                LEFT JOIN rep_period_stats s ON s.tenant_id = :t AND s.granularity = :g
                                            AND s.period_start = p.ps AND s.rep_id = b.rep_id
                LEFT JOIN goal_attainment g ON g.tenant_id = :t AND g.granularity = :g AND g.period_start = p.ps
                                           AND g.rep_id = b.rep_id AND g.metric = :metric
                WHERE CAST(:manager AS text) IS NULL OR b.rep_id IN (SELECT rep_id FROM reports)
                ORDER BY rank, b.rep_id
                LIMIT :limit
                """
            ),
            {
                "t": tenant_id,
                "g": granularity.value,
                "day": day,
                "team": team_id,
                "manager": manager_id,
                "metric": metric.value,
                "sep": hierarchy.TEAM_REP_SEPARATOR,
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
            "activities": int(row.activities),
            "team_percentile": row.team_percentile,
            "change_vs_baseline": row.change_vs_baseline,
            "insufficient_data": row.insufficient_data,
            "goal": None
            if row.goal_goal_id is None
            else goals.attainment_of({c: getattr(row, f"goal_{c}") for c in goals.ATTAINMENT_COLUMNS}),
            "recency_score": row.recency_score,
        }
        for row in rows
    ]
    return rows[0].ps, entries


def _owned_by(level: str, instant: str) -> str:
    """A deal ``d`` owned by rep ``:e``, or by a member of the team subtree on the day of ``instant``
    (in the tenant's time zone ``:tz``)."""
    if level == "rep":
        return "d.owner_rep_id = :e"
    day = f"({instant} AT TIME ZONE :tz)::date"
    return f"""EXISTS (SELECT 1 FROM ref_team_memberships m
                WHERE m.tenant_id = d.tenant_id AND m.rep_id = d.owner_rep_id
                  AND m.team_id IN (SELECT team_id FROM subtree)
                  AND NOT m.deleted AND m.valid_from <= {day} AND (m.valid_to IS NULL OR m.valid_to > {day}))"""


async def funnel_counts(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    level: str,
    entity_id: str,
    first: date,
    last: date,
    time_zone: str = "UTC",
) -> dict[str, int]:
    """The funnel counters summed over the day rollups in ``[first, last]``, plus deals won.

    A deal counts as won in range by the day of its ``closed_at`` in the tenant's ``time_zone``
    (the day rollups' calendar; metrics dates a win so too), unless deleted or merged into
    another; for a team, when its owner was a member of the team, or of a team below it, on that
    day. A team's counters include its descendants'.
    """
    sums = ", ".join(f"COALESCE(sum({c}), 0) AS {c}" for c in FUNNEL_COUNTERS)
    entities = "SELECT team_id FROM subtree" if level == "team" else "SELECT CAST(:e AS text)"
    params = {"t": tenant_id, "e": entity_id, "team": entity_id if level == "team" else None, "tz": time_zone}
    counters = (
        await conn.execute(
            text(
                f"WITH RECURSIVE {hierarchy.SUBTREE} "
                f"SELECT {sums} FROM metric_rollups WHERE tenant_id = :t AND level = :level "
                f"AND entity_id IN ({entities}) AND granularity = 'day' AND period_start BETWEEN :first AND :last"
            ),
            {**params, "level": level, "first": first, "last": last},
        )
    ).one()
    owner = _owned_by(level, "d.closed_at")
    won = (
        await conn.execute(
            text(
                f"WITH RECURSIVE {hierarchy.SUBTREE} "
                "SELECT count(*) AS n FROM ref_deals d WHERE d.tenant_id = :t AND NOT d.deleted AND d.is_won "
                "AND d.merged_into IS NULL AND d.closed_at IS NOT NULL "
                "AND (d.closed_at AT TIME ZONE :tz)::date BETWEEN :first AND :last AND " + owner
            ),
            {**params, "first": first, "last": last},
        )
    ).one()
    created = (
        await conn.execute(
            text(
                f"WITH RECURSIVE {hierarchy.SUBTREE} "
                "SELECT count(*) AS n FROM ref_deals d WHERE d.tenant_id = :t AND NOT d.deleted "
                "AND d.merged_into IS NULL AND (d.created_at AT TIME ZONE :tz)::date BETWEEN :first AND :last AND "
                + _owned_by(level, "d.created_at")
            ),
            {**params, "first": first, "last": last},
        )
    ).one()
    out = {c: int(getattr(counters, c)) for c in FUNNEL_COUNTERS}
    out["deals_won"] = int(won.n)
    out["opportunities_created"] = int(created.n)
    return out


async def leading_indicators(
    conn: AsyncConnection, tenant_id: str, *, level: str, entity_id: str, first: date, last: date
) -> dict[str, Any]:
    """Pipeline amount touched and buyer response time of a rep or team (with the teams below it).

    Pipeline touched: the CRM amounts of the distinct deals the work of tenant-local days
    ``[first, last]`` engaged. Response time: for each buyer email (inbound, neither internal
    nor excluded, with a thread) received on UTC days ``[first, last]``, the delay to the next
    outbound email in the same thread; the median over the answered ones.
    """
    who_contribution = "c.rep_id = :e" if level == "rep" else "c.team_id IN (SELECT team_id FROM subtree)"
    who_attribution = "a.rep_id = :e" if level == "rep" else "a.team_id IN (SELECT team_id FROM subtree)"
    params = {"t": tenant_id, "e": entity_id, "team": entity_id if level == "team" else None}
    touched = (
        await conn.execute(
            text(
                f"WITH RECURSIVE {hierarchy.SUBTREE} "
                "SELECT COALESCE(sum(d.amount), 0) AS amount FROM ref_deals d "
                "WHERE d.tenant_id = :t AND NOT d.deleted AND d.merged_into IS NULL AND d.deal_id IN ("
                "  SELECT DISTINCT deal FROM metric_contributions c, unnest(c.engaged_deal_ids) AS deal "
                f"  WHERE c.tenant_id = :t AND {who_contribution} AND c.day BETWEEN :first AND :last)"
            ),
            {**params, "first": first, "last": last},
        )
    ).one()
    responses = (
        await conn.execute(
            text(
                f"WITH RECURSIVE {hierarchy.SUBTREE} "
                "SELECT count(*) AS answered, percentile_cont(0.5) WITHIN GROUP "
                "  (ORDER BY extract(epoch FROM r.at - b.occurred_at)) AS median "
                "FROM activities b "
                "JOIN attributions a ON a.tenant_id = b.tenant_id AND a.activity_id = b.activity_id "
                "JOIN LATERAL (SELECT min(o.occurred_at) AS at FROM activities o "
                "  WHERE o.tenant_id = b.tenant_id AND o.thread_id = b.thread_id AND o.kind = 'email' "
                "    AND o.direction = 'outbound' AND o.occurred_at > b.occurred_at) r ON r.at IS NOT NULL "
                "WHERE b.tenant_id = :t AND b.kind = 'email' AND b.direction = 'inbound' "
                "  AND b.thread_id IS NOT NULL AND NOT b.automated AND a.status NOT IN ('internal', 'excluded') "
                f"  AND {who_attribution} AND b.occurred_at >= CAST(:first AS date) AT TIME ZONE 'UTC' "
                "  AND b.occurred_at < (CAST(:last AS date) + 1) AT TIME ZONE 'UTC'"
            ),
            {**params, "first": first, "last": last},
        )
    ).one()
    return {
        "pipeline_amount_touched": float(touched.amount),
        "buyer_emails_answered": int(responses.answered),
        "buyer_response_median_seconds": None
        if responses.median is None
        else round(float(responses.median), 1),
    }
