"""SQL of the read-model refresher: what it reads to compute, and the rows it replaces."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.goals import GoalScope
from libs.common.db.deal_engagement import buyer_answered_sql
from services.metrics.adapters.rollups import COUNTER_COLUMNS
from services.metrics.adapters.scoring import DEFAULT_VERSION, load_model
from services.metrics.domain.definitions import MetricCounts
from services.metrics.domain.goals import Attainment, GoalRow
from services.metrics.domain.insights import OpenDealRow
from services.metrics.domain.read_models import Membership, RepPeriodStat
from services.metrics.domain.scoring import DEFAULT_SCORING_MODEL, ScoringModel

#: Columns of the rep rollups that are counters of ``MetricCounts`` (``activities`` is not).
_COUNT_FIELDS = tuple(c for c in COUNTER_COLUMNS if c != "activities")


async def due_tenants(conn: AsyncConnection, full_refresh_after: timedelta) -> list[str]:
    """Tenants flagged dirty, and every tenant not refreshed within ``full_refresh_after``."""
    result = await conn.execute(
        text(
            "SELECT k.tenant_id FROM ("
            "  SELECT tenant_id FROM tenants UNION SELECT tenant_id FROM metric_refresh_state"
            ") k LEFT JOIN metric_refresh_state s ON s.tenant_id = k.tenant_id "
            "WHERE s.tenant_id IS NULL OR s.dirty_since IS NOT NULL OR s.refreshed_at IS NULL "
            "   OR s.refreshed_at < now() - CAST(:age AS interval) "
            "ORDER BY s.dirty_since NULLS LAST, k.tenant_id"
        ),
        {"age": full_refresh_after},
    )
    return [row.tenant_id for row in result]


async def refresh_state_version(conn: AsyncConnection, tenant_id: str) -> str | None:
    """The row version (xmin) of the tenant's refresh state: any batch that marks it dirty changes it."""
    row = (
        await conn.execute(
            text("SELECT xmin::text AS xmin FROM metric_refresh_state WHERE tenant_id = :t"), {"t": tenant_id}
        )
    ).first()
    return None if row is None else str(row.xmin)


def refresh_lock_key(tenant_id: str) -> str:
    return f"spm-refresh:{tenant_id}"


async def claim_refresh(conn: AsyncConnection, tenant_id: str) -> bool:
    """Take the tenant's refresh for this transaction, or False when another instance holds it.

    Every metrics instance runs a refresher; without the claim each would recompute every dirty
    tenant on its tick. An advisory lock, not a row lock: the consumer's batches update
    ``metric_refresh_state`` and must never wait for a refresh.
    """
    result = await conn.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": refresh_lock_key(tenant_id)}
    )
    return bool(result.scalar_one())


async def mark_refreshed(conn: AsyncConnection, tenant_id: str, seen_version: str | None) -> None:
    """Record the refresh; clear the dirty flag only if no batch touched the state since it was read."""
    await conn.execute(
        text(
            "INSERT INTO metric_refresh_state (tenant_id, dirty_since, refreshed_at) VALUES (:t, NULL, now()) "
            "ON CONFLICT (tenant_id) DO UPDATE SET refreshed_at = now(), dirty_since = CASE "
            "  WHEN metric_refresh_state.xmin::text = CAST(:seen AS text) THEN NULL "
            "  ELSE metric_refresh_state.dirty_since END"
        ),
        {"t": tenant_id, "seen": seen_version},
    )


async def memberships(conn: AsyncConnection, tenant_id: str) -> list[Membership]:
    result = await conn.execute(
        text(
            "SELECT rep_id, team_id, valid_from, valid_to FROM ref_team_memberships "
            "WHERE tenant_id = :t AND NOT deleted"
        ),
        {"t": tenant_id},
    )
    return [Membership(row.rep_id, row.team_id, row.valid_from, row.valid_to) for row in result]


async def inactive_reps(conn: AsyncConnection, tenant_id: str) -> list[str]:
    """Reps the CRM deactivated, deleted or merged: on no roster."""
    result = await conn.execute(
        text(
            "SELECT rep_id FROM ref_reps WHERE tenant_id = :t "
            "AND (NOT active OR deleted OR merged_into IS NOT NULL)"
        ),
        {"t": tenant_id},
    )
    return [row.rep_id for row in result]


async def rep_figures(
    conn: AsyncConnection, tenant_id: str, granularity: str, first: date, last: date
) -> tuple[dict[str, dict[date, float]], dict[str, dict[date, int]]]:
    """Rep scores and activity counts per period start in ``[first, last]``; a row without counted activity is no data."""
    result = await conn.execute(
        text(
            "SELECT entity_id, period_start, score, activities FROM metric_rollups "
            "WHERE tenant_id = :t AND level = 'rep' AND granularity = :g "
            "AND period_start BETWEEN :first AND :last AND activities > 0"
        ),
        {"t": tenant_id, "g": granularity, "first": first, "last": last},
    )
    scores: dict[str, dict[date, float]] = defaultdict(dict)
    activities: dict[str, dict[date, int]] = defaultdict(dict)
    for row in result:
        scores[row.entity_id][row.period_start] = float(row.score)
        activities[row.entity_id][row.period_start] = int(row.activities)
    return scores, activities


async def rep_counts(
    conn: AsyncConnection, tenant_id: str, granularity: str, period_start: date
) -> dict[str, MetricCounts]:
    result = await conn.execute(
        text(
            f"SELECT entity_id, {', '.join(_COUNT_FIELDS)} FROM metric_rollups "
            "WHERE tenant_id = :t AND level = 'rep' AND granularity = :g AND period_start = :p "
            "AND activities > 0"
        ),
        {"t": tenant_id, "g": granularity, "p": period_start},
    )
    return {row.entity_id: MetricCounts(**{c: int(row._mapping[c]) for c in _COUNT_FIELDS}) for row in result}


async def won_deals(conn: AsyncConnection, tenant_id: str) -> list[tuple[str, datetime]]:
    """(owner rep, close instant) of the deals currently won; ``updated_at`` when no close date."""
    result = await conn.execute(
        text(
            "SELECT owner_rep_id, COALESCE(closed_at, updated_at) AS closed FROM ref_deals "
            "WHERE tenant_id = :t AND is_won AND NOT deleted AND merged_into IS NULL "
            "AND owner_rep_id IS NOT NULL"
        ),
        {"t": tenant_id},
    )
    return [(row.owner_rep_id, row.closed) for row in result]


#: A deal's engagement: every contribution whose ``engaged_deal_ids`` holds it (see
#: ``definitions.engaged_deal_ids``). The gateway's deal timeline reads the same column.
#:
#: The reference: what ``open_deals`` must equal, read from the tenant's whole history (the
#: refresher read it at every refresh until the eighth round of docs/performance.md; it now reads
#: ``metric_deal_engagement``). Its form was chosen for cost (seventh round): the arrays unnested
#: in the select list, only the open deals' rows kept, distinct (deal, contact) pairs hashed and
#: counted instead of a ``count(DISTINCT ...)`` that sorts every pair.
_OPEN_DEALS = """
WITH open AS (
    SELECT deal_id, owner_rep_id, created_at FROM ref_deals
    WHERE tenant_id = :t AND NOT is_closed AND NOT deleted AND merged_into IS NULL
), e AS MATERIALIZED (
    SELECT deal, occurred_at, answered, contact_ids FROM (
        SELECT unnest(c.engaged_deal_ids) AS deal, c.occurred_at, ANSWERED AS answered, c.contact_ids
        FROM metric_contributions c WHERE c.tenant_id = :t AND c.engaged_deal_ids <> '{}'
    ) engaged WHERE deal IN (SELECT deal_id FROM open)
), activity AS (
    SELECT deal, max(occurred_at) AS last_at, max(occurred_at) FILTER (WHERE answered) AS reply_at
    FROM e GROUP BY deal
), contacts AS (
    SELECT deal, count(*) AS engaged
    FROM (
        SELECT DISTINCT deal, contact FROM (SELECT deal, unnest(contact_ids) AS contact FROM e) pairs
        WHERE contact IS NOT NULL
    ) p GROUP BY deal
)
SELECT o.deal_id, o.owner_rep_id, o.created_at, a.last_at AS last_activity_at,
       a.reply_at AS last_buyer_reply_at, COALESCE(k.engaged, 0) AS engaged
FROM open o LEFT JOIN activity a ON a.deal = o.deal_id LEFT JOIN contacts k ON k.deal = o.deal_id
""".replace("ANSWERED", buyer_answered_sql("c"))

#: Open deals with their engagement as the refresher last caught it up (``catch_up_engagement``).
_OPEN_DEALS_KEPT = """
SELECT d.deal_id, d.owner_rep_id, d.created_at, s.last_activity_at, s.last_buyer_reply_at,
       COALESCE(cardinality(s.contact_ids), 0) AS engaged
FROM ref_deals d LEFT JOIN metric_deal_engagement s ON s.tenant_id = d.tenant_id AND s.deal_id = d.deal_id
WHERE d.tenant_id = :t AND NOT d.is_closed AND NOT d.deleted AND d.merged_into IS NULL
"""


def _open_deal_rows(result: Any) -> list[OpenDealRow]:
    return [
        OpenDealRow(
            deal_id=row.deal_id,
            owner_rep_id=row.owner_rep_id,
            created_at=row.created_at,
            last_activity_at=row.last_activity_at,
            last_buyer_reply_at=row.last_buyer_reply_at,
            engaged_contacts=int(row.engaged),
        )
        for row in result
    ]


async def open_deals(conn: AsyncConnection, tenant_id: str) -> list[OpenDealRow]:
    """Open deals with their engagement: last activity, last buyer reply, distinct engaged contacts.

    Read from ``metric_deal_engagement``: call ``catch_up_engagement`` first in the transaction."""
    return _open_deal_rows(await conn.execute(text(_OPEN_DEALS_KEPT), {"t": tenant_id}))


async def open_deals_from_history(conn: AsyncConnection, tenant_id: str) -> list[OpenDealRow]:
    """``open_deals`` read from every contribution of the tenant: the reference it must equal."""
    return _open_deal_rows(await conn.execute(text(_OPEN_DEALS), {"t": tenant_id}))


def _engagement_of(pairs: str) -> str:
    """(deal, time, reply time, contacts) of each (contribution, deal it engages) that ``pairs`` (a
    FROM item of deal, occurred_at, answered, contact_ids) yields: the figures ``_OPEN_DEALS``
    aggregates."""
    return (
        "SELECT deal, occurred_at AS at, CASE WHEN answered THEN occurred_at END AS reply_at, "
        f"contact_ids FROM {pairs}"
    )


#: Each deal of ``src`` (deal, at, reply_at, contact_ids) written as its latest times and its
#: distinct contacts (a null contact is none, as in ``_OPEN_DEALS``).
_WRITE_ENGAGEMENT = """
times AS (SELECT deal, max(at) AS last_at, max(reply_at) AS reply_at FROM src GROUP BY deal),
contacts AS (
    SELECT deal, array_agg(DISTINCT contact ORDER BY contact) AS ids
    FROM src, unnest(src.contact_ids) AS contact WHERE contact IS NOT NULL GROUP BY deal
)
INSERT INTO metric_deal_engagement (tenant_id, deal_id, last_activity_at, last_buyer_reply_at, contact_ids)
SELECT :t, t.deal, t.last_at, t.reply_at, COALESCE(k.ids, '{}') FROM times t LEFT JOIN contacts k ON k.deal = t.deal
ORDER BY t.deal
ON CONFLICT (tenant_id, deal_id) DO UPDATE SET last_activity_at = EXCLUDED.last_activity_at,
    last_buyer_reply_at = EXCLUDED.last_buyer_reply_at, contact_ids = EXCLUDED.contact_ids
"""


#: Each deal of ``:redo`` with the tenant's contributions that engage it, looked up deal by deal
#: through the GIN index on ``engaged_deal_ids`` (``fastupdate`` off since 0017_deal_engagement:
#: no pending list to scan at each lookup). The fence (``OFFSET 0``) keeps the tenant out of the
#: scan: on tables analysed while small the planner ANDed in every entry of the tenant from
#: ``metric_contributions_time``, and with ``&&`` over several deals it chose a sequential scan.
_REDO_PAIRS = (
    "(SELECT r.deal, c.occurred_at, c.answered, c.contact_ids FROM unnest(CAST(:redo AS text[])) AS r(deal) "
    f"CROSS JOIN LATERAL (SELECT tenant_id, occurred_at, {buyer_answered_sql()} AS answered, contact_ids "
    "FROM metric_contributions WHERE engaged_deal_ids @> ARRAY[r.deal] OFFSET 0) c WHERE c.tenant_id = :t) e"
)
#: Every (contribution, deal it engages) of the tenant.
_ALL_PAIRS = (
    f"(SELECT unnest(c.engaged_deal_ids) AS deal, c.occurred_at, {buyer_answered_sql('c')} AS answered, "
    "c.contact_ids FROM metric_contributions c WHERE c.tenant_id = :t AND c.engaged_deal_ids <> '{}') e"
)


def _catch_up_sql(recompute: bool) -> str:
    """Consume the tenant's logged changes: the deals in ``:redo`` recomputed from their
    contributions (``_REDO_PAIRS``), every other logged deal's stored row merged with what its
    changes add. A recomputed deal that no contribution engages any more loses its row.
    ``recompute`` rows of deals not in ``:redo`` (logged since it was read) stay for the next
    refresh."""
    redo = "CAST(:redo AS text[])"
    recomputed = _engagement_of(_REDO_PAIRS) + " UNION ALL" if recompute else ""
    return f"""
WITH taken AS (
    DELETE FROM metric_deal_engagement_changes
    WHERE tenant_id = :t AND (NOT recompute OR deal_id = ANY({redo}))
    RETURNING deal_id, last_activity_at, last_buyer_reply_at, contact_ids
), merged AS (
    SELECT deal_id FROM taken WHERE deal_id <> ALL({redo}) GROUP BY deal_id
), src AS MATERIALIZED (
    {recomputed}
    SELECT s.deal_id AS deal, s.last_activity_at AS at, s.last_buyer_reply_at AS reply_at, s.contact_ids
    FROM merged m JOIN metric_deal_engagement s ON s.tenant_id = :t AND s.deal_id = m.deal_id
    UNION ALL
    SELECT deal_id, last_activity_at, last_buyer_reply_at, contact_ids FROM taken WHERE deal_id <> ALL({redo})
), gone AS (
    DELETE FROM metric_deal_engagement WHERE tenant_id = :t AND deal_id = ANY({redo})
    AND deal_id NOT IN (SELECT deal FROM src)
), {_WRITE_ENGAGEMENT}"""


_CATCH_UP = {recompute: _catch_up_sql(recompute) for recompute in (False, True)}
_REBUILD = f"WITH src AS MATERIALIZED ({_engagement_of(_ALL_PAIRS)}), {_WRITE_ENGAGEMENT}"


async def catch_up_engagement(conn: AsyncConnection, tenant_id: str) -> None:
    """Bring ``metric_deal_engagement`` up to the changes logged with the contributions.

    The refresher is its only writer (under its claim on the tenant, or ``rebuild_engagement``'s
    lock). Each statement sees at least what the previous one saw, so a deal read here as
    ``recompute`` is recomputed from contributions that include every change it was logged for.
    Its cost follows what changed since the last refresh, not the tenant's history."""
    redo = [
        row.deal_id
        for row in await conn.execute(
            text(
                "SELECT DISTINCT deal_id FROM metric_deal_engagement_changes WHERE tenant_id = :t AND recompute "
                "ORDER BY deal_id"
            ),
            {"t": tenant_id},
        )
    ]
    await conn.execute(text(_CATCH_UP[bool(redo)]), {"t": tenant_id, "redo": redo})


async def rebuild_engagement(conn: AsyncConnection, tenant_id: str) -> int:
    """Recompute every deal's engagement of the tenant from its whole history (an operator's repair,
    ``spm rebuild-deal-engagement``); waits for a refresh in progress. Returns the deals written."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": refresh_lock_key(tenant_id)}
    )
    for table in ("metric_deal_engagement_changes", "metric_deal_engagement"):
        await conn.execute(text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": tenant_id})
    result = await conn.execute(text(_REBUILD), {"t": tenant_id})
    return int(result.rowcount)


_STAT_COLUMNS = (
    "team_id, score, team_percentile, baseline_score, baseline_periods, change_vs_baseline, activities, "
    "insufficient_data, recency_score"
)
_STAT_NAMES = [c.strip() for c in _STAT_COLUMNS.split(",")]
#: The grain's rows as ``stats`` says: a row gone is deleted, a changed one updated, a new one
#: inserted, and an unchanged one (most of them: between two refreshes only the periods with new
#: activities move) not written at all. Three disjoint sets of keys; each part reads the table as
#: it was before the statement. A plain insert, not an upsert: an upsert writes a second record per
#: row inserted (the speculative insertion's confirmation) and locks, so logs, every row it leaves
#: as it is. The refresh is the only writer of the table, one per tenant at a time (``claim_refresh``).
#: ``computed_at`` (read by nothing) is thus when the row's figures last changed.
_REPLACE_REP_PERIOD_STATS = text(
    "WITH u AS (SELECT * FROM unnest(CAST(:period_start AS date[]), CAST(:rep_id AS text[]), "
    "CAST(:team_id AS text[]), CAST(:score AS float8[]), CAST(:team_percentile AS float8[]), "
    "CAST(:baseline_score AS float8[]), CAST(:baseline_periods AS int[]), "
    "CAST(:change_vs_baseline AS float8[]), CAST(:activities AS int[]), "
    "CAST(:insufficient_data AS boolean[]), CAST(:recency_score AS float8[])) "
    f"AS u(period_start, rep_id, {_STAT_COLUMNS})), "
    "gone AS (DELETE FROM rep_period_stats r WHERE r.tenant_id = :t AND r.granularity = :g "
    "AND NOT EXISTS (SELECT 1 FROM u WHERE u.period_start = r.period_start AND u.rep_id = r.rep_id)), "
    "changed AS (UPDATE rep_period_stats r SET computed_at = now(), "
    + ", ".join(f"{c} = u.{c}" for c in _STAT_NAMES)
    + " FROM u WHERE r.tenant_id = :t AND r.granularity = :g AND r.period_start = u.period_start "
    "AND r.rep_id = u.rep_id AND ("
    + ", ".join(f"r.{c}" for c in _STAT_NAMES)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"u.{c}" for c in _STAT_NAMES)
    + ")) "
    f"INSERT INTO rep_period_stats (tenant_id, granularity, period_start, rep_id, {_STAT_COLUMNS}) "
    "SELECT :t, :g, u.* FROM u WHERE NOT EXISTS (SELECT 1 FROM rep_period_stats r WHERE r.tenant_id = :t "
    "AND r.granularity = :g AND r.period_start = u.period_start AND r.rep_id = u.rep_id)"
)


async def replace_rep_period_stats(
    conn: AsyncConnection, tenant_id: str, granularity: str, stats: Sequence[RepPeriodStat]
) -> None:
    await conn.execute(
        _REPLACE_REP_PERIOD_STATS,
        {
            "t": tenant_id,
            "g": granularity,
            "period_start": [s.period_start for s in stats],
            "rep_id": [s.rep_id for s in stats],
            "team_id": [s.team_id for s in stats],
            "score": [s.score for s in stats],
            "team_percentile": [s.team_percentile for s in stats],
            "baseline_score": [s.baseline_score for s in stats],
            "baseline_periods": [s.baseline_periods for s in stats],
            "change_vs_baseline": [s.change_vs_baseline for s in stats],
            "activities": [s.activities for s in stats],
            "insufficient_data": [s.insufficient_data for s in stats],
            "recency_score": [s.recency_score for s in stats],
        },
    )


InsightRow = tuple[str, str, str | None, date | None, list[str], dict[str, Any]]


async def replace_insights(conn: AsyncConnection, tenant_id: str, rows: Sequence[InsightRow]) -> None:
    """Rows are (kind, subject id, team id, period start, reasons, details)."""
    await conn.execute(text("DELETE FROM insights WHERE tenant_id = :t"), {"t": tenant_id})
    if not rows:
        return
    await conn.execute(
        text(
            "INSERT INTO insights (tenant_id, kind, subject_id, team_id, period_start, reasons, details) "
            "SELECT :t, kind, subject, team, period, string_to_array(NULLIF(reasons, ''), ','), "
            "CAST(details AS jsonb) FROM unnest(CAST(:kind AS text[]), CAST(:subject AS text[]), "
            "CAST(:team AS text[]), CAST(:period AS date[]), CAST(:reasons AS text[]), CAST(:details AS text[])) "
            "AS u(kind, subject, team, period, reasons, details)"
        ),
        {
            "t": tenant_id,
            "kind": [r[0] for r in rows],
            "subject": [r[1] for r in rows],
            "team": [r[2] for r in rows],
            "period": [r[3] for r in rows],
            "reasons": [",".join(r[4]) for r in rows],
            "details": [orjson.dumps(r[5]).decode() for r in rows],
        },
    )


async def goals(conn: AsyncConnection, tenant_id: str) -> list[GoalRow]:
    result = await conn.execute(
        text(
            "SELECT goal_id, scope, COALESCE(subject_id, role) AS subject, period, metric, target "
            "FROM activity_goals WHERE tenant_id = :t ORDER BY goal_id"
        ),
        {"t": tenant_id},
    )
    return [
        GoalRow(row.goal_id, GoalScope(row.scope), row.subject, row.period, row.metric, float(row.target))
        for row in result
    ]


async def rep_roles(conn: AsyncConnection, tenant_id: str) -> dict[str, str]:
    """rep -> the role the CRM last reported for it (reps without one are absent)."""
    result = await conn.execute(
        text("SELECT rep_id, role FROM ref_reps WHERE tenant_id = :t AND role IS NOT NULL"),
        {"t": tenant_id},
    )
    return {row.rep_id: row.role for row in result}


async def team_parents(conn: AsyncConnection, tenant_id: str) -> dict[str, str | None]:
    """team -> its parent, teams the CRM deleted included: a team a re-org dissolved stays under
    its parent (a tombstone keeps the one held), so a goal of a team above it still measures the
    reps who ended a period on it, as its history still counts there (``hierarchy.SUBTREE``)."""
    result = await conn.execute(
        text("SELECT team_id, parent_id FROM ref_teams WHERE tenant_id = :t"),
        {"t": tenant_id},
    )
    return {row.team_id: row.parent_id for row in result}


#: What a goal may measure: the score or a rep rollup column (``GoalMetric``).
_GOAL_COLUMNS = ("score", *COUNTER_COLUMNS)


async def rep_metric_values(
    conn: AsyncConnection, tenant_id: str, granularity: str, period_start: date, metrics: Sequence[str]
) -> dict[str, dict[str, float]]:
    """rep -> metric -> value in one period, for the goal metrics asked for."""
    columns = [m for m in dict.fromkeys(metrics) if m in _GOAL_COLUMNS]
    if not columns:
        return {}
    result = await conn.execute(
        text(
            f"SELECT entity_id, {', '.join(columns)} FROM metric_rollups "
            "WHERE tenant_id = :t AND level = 'rep' AND granularity = :g AND period_start = :p"
        ),
        {"t": tenant_id, "g": granularity, "p": period_start},
    )
    return {row.entity_id: {c: float(row._mapping[c]) for c in columns} for row in result}


#: (granularity, period start, rep, metric, goal id, attainment)
GoalAttainmentRow = tuple[str, date, str, str, str, Attainment]


async def replace_goal_attainment(
    conn: AsyncConnection, tenant_id: str, rows: Sequence[GoalAttainmentRow]
) -> None:
    await conn.execute(text("DELETE FROM goal_attainment WHERE tenant_id = :t"), {"t": tenant_id})
    if not rows:
        return
    await conn.execute(
        text(
            "INSERT INTO goal_attainment (tenant_id, granularity, period_start, rep_id, metric, goal_id, target, "
            "actual, attainment, expected_by_now, pace, days_left, complete) "
            "SELECT :t, * FROM unnest(CAST(:g AS text[]), CAST(:p AS date[]), CAST(:r AS text[]), "
            "CAST(:m AS text[]), CAST(:goal AS text[]), CAST(:target AS float8[]), CAST(:actual AS float8[]), "
            "CAST(:att AS float8[]), CAST(:expected AS float8[]), CAST(:pace AS float8[]), "
            "CAST(:left AS int[]), CAST(:complete AS boolean[]))"
        ),
        {
            "t": tenant_id,
            "g": [r[0] for r in rows],
            "p": [r[1] for r in rows],
            "r": [r[2] for r in rows],
            "m": [r[3] for r in rows],
            "goal": [r[4] for r in rows],
            "target": [r[5].target for r in rows],
            "actual": [r[5].actual for r in rows],
            "att": [r[5].attainment for r in rows],
            "expected": [r[5].expected_by_now for r in rows],
            "pace": [r[5].pace for r in rows],
            "left": [r[5].days_left for r in rows],
            "complete": [r[5].complete for r in rows],
        },
    )


async def current_insights(conn: AsyncConnection, tenant_id: str) -> list[InsightRow]:
    """The insights as the last refresh left them, locked until this transaction replaces them."""
    result = await conn.execute(
        text(
            "SELECT kind, subject_id, team_id, period_start, reasons, details FROM insights "
            "WHERE tenant_id = :t ORDER BY kind, subject_id FOR UPDATE"
        ),
        {"t": tenant_id},
    )
    return [
        (row.kind, row.subject_id, row.team_id, row.period_start, list(row.reasons), dict(row.details))
        for row in result
    ]


async def record_insight_changes(
    conn: AsyncConnection, tenant_id: str, changes: Sequence[tuple[str, InsightRow]]
) -> None:
    """Append (change, insight) rows to the ``insight-changed`` outbox, in the caller's transaction."""
    if not changes:
        return
    await conn.execute(
        text(
            "INSERT INTO insight_changes (tenant_id, change, kind, subject_id, team_id, period_start, reasons, "
            "details) SELECT :t, change, kind, subject, team, period, string_to_array(NULLIF(reasons, ''), ','), "
            "CAST(details AS jsonb) FROM unnest(CAST(:change AS text[]), CAST(:kind AS text[]), "
            "CAST(:subject AS text[]), CAST(:team AS text[]), CAST(:period AS date[]), CAST(:reasons AS text[]), "
            "CAST(:details AS text[])) AS u(change, kind, subject, team, period, reasons, details) "
            "ORDER BY kind, subject"
        ),
        {
            "t": tenant_id,
            "change": [c for c, _ in changes],
            "kind": [r[0] for _, r in changes],
            "subject": [r[1] for _, r in changes],
            "team": [r[2] for _, r in changes],
            "period": [r[3] for _, r in changes],
            "reasons": [",".join(r[4]) for _, r in changes],
            "details": [orjson.dumps(r[5]).decode() for _, r in changes],
        },
    )


async def applied_model(conn: AsyncConnection, tenant_id: str) -> ScoringModel:
    """The scoring model the stored scores were computed with (the default until one is applied)."""
    row = (
        await conn.execute(
            text("SELECT applied_version FROM scoring_state WHERE tenant_id = :t"), {"t": tenant_id}
        )
    ).first()
    if row is None or row.applied_version == DEFAULT_VERSION:
        return DEFAULT_SCORING_MODEL
    return await load_model(conn, tenant_id, row.applied_version) or DEFAULT_SCORING_MODEL


async def rep_day_scores(
    conn: AsyncConnection, tenant_id: str, first: date, last: date
) -> dict[str, dict[date, float]]:
    """Each rep's day scores in ``[first, last]``."""
    result = await conn.execute(
        text(
            "SELECT entity_id, period_start, score FROM metric_rollups WHERE tenant_id = :t AND level = 'rep' "
            "AND granularity = 'day' AND period_start BETWEEN :first AND :last"
        ),
        {"t": tenant_id, "first": first, "last": last},
    )
    scores: dict[str, dict[date, float]] = defaultdict(dict)
    for row in result:
        scores[row.entity_id][row.period_start] = float(row.score)
    return scores
