"""Managers' weekly digests: their reps' week, goals and insights, stored once the week is over.

The refresher computes the digest of the last complete week for every manager (a rep some
rep reports to) that has none yet, stores it in ``manager_digests`` (the gateway serves it)
and queues it for the tenant's alert webhooks. A digest is the week as it stood when first
computed after the week ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: ``reports(rep_id)``: the reps of ``:reps``, those the manager manages (``domain.management``).
#: Before 2026-12 a recursive query per manager and statement, each step reading every rep of the
#: tenant: a chain of 1,000 reps, each managing the next, took one refresh 200 s.
_REPORTS = """
    reports(rep_id) AS (SELECT DISTINCT unnest(CAST(:reps AS text[])))"""

_GOAL_COLUMNS = (
    "metric",
    "goal_id",
    "target",
    "actual",
    "attainment",
    "expected_by_now",
    "pace",
    "days_left",
    "complete",
)


async def managers(conn: AsyncConnection, tenant_id: str) -> list[str]:
    """Reps at least one (not deleted) rep reports to."""
    result = await conn.execute(
        text(
            "SELECT DISTINCT m.rep_id FROM ref_reps m JOIN ref_reps r ON r.tenant_id = m.tenant_id "
            "AND r.manager_id = m.rep_id AND NOT r.deleted WHERE m.tenant_id = :t AND NOT m.deleted ORDER BY 1"
        ),
        {"t": tenant_id},
    )
    return [row.rep_id for row in result]


async def undigested(conn: AsyncConnection, tenant_id: str, candidates: list[str], week: date) -> list[str]:
    """The managers of ``candidates`` without a digest of ``week`` yet."""
    result = await conn.execute(
        text(
            "SELECT m FROM unnest(CAST(:m AS text[])) AS m WHERE NOT EXISTS (SELECT 1 FROM manager_digests d "
            "WHERE d.tenant_id = :t AND d.manager_id = m AND d.week_start = :w) ORDER BY m"
        ),
        {"t": tenant_id, "m": candidates, "w": week},
    )
    return [row.m for row in result]


async def store_digest(
    conn: AsyncConnection, tenant_id: str, manager_id: str, week: date, digest: dict[str, Any]
) -> None:
    """Store the digest and queue it for every alert webhook of the tenant."""
    await conn.execute(
        text(
            "INSERT INTO manager_digests (tenant_id, manager_id, week_start, digest) "
            "VALUES (:t, :m, :w, CAST(:d AS jsonb)) ON CONFLICT DO NOTHING"
        ),
        {"t": tenant_id, "m": manager_id, "w": week, "d": orjson.dumps(digest).decode()},
    )
    await conn.execute(
        text(
            "INSERT INTO alert_deliveries (tenant_id, webhook_id, digest_manager_id, digest_week) "
            "SELECT :t, webhook_id, :m, :w FROM alert_webhooks WHERE tenant_id = :t ON CONFLICT DO NOTHING"
        ),
        {"t": tenant_id, "m": manager_id, "w": week},
    )


async def management(conn: AsyncConnection, tenant_id: str) -> dict[str, str]:
    """Each rep the CRM has not deleted -> the rep it reports to, for those reporting to one."""
    result = await conn.execute(
        text(
            "SELECT rep_id, manager_id FROM ref_reps "
            "WHERE tenant_id = :t AND NOT deleted AND manager_id IS NOT NULL"
        ),
        {"t": tenant_id},
    )
    return {row.rep_id: row.manager_id for row in result}


async def weekly_digest(
    conn: AsyncConnection, tenant_id: str, manager_id: str, reports: Sequence[str], week: date
) -> dict[str, Any]:
    """The reps ``manager_id`` manages, ``reports`` (``domain.management.reports_of``), in the week
    starting ``week``: their team on the week's last day, score and activities from the rollups,
    standing and goals from the metrics service's read models (null or empty when not computed),
    and the current insights."""
    params = {"t": tenant_id, "reps": list(reports), "week": week}
    reps = await conn.execute(
        text(
            f"WITH {_REPORTS} "
            "SELECT x.rep_id, COALESCE(r.name, '') AS name, "
            "  (SELECT m.team_id FROM ref_team_memberships m WHERE m.tenant_id = :t AND m.rep_id = x.rep_id "
            "     AND NOT m.deleted AND m.valid_from <= CAST(:week AS date) + 6 "
            "     AND (m.valid_to IS NULL OR m.valid_to > CAST(:week AS date) + 6) "
            "   ORDER BY m.valid_from DESC, m.team_id DESC LIMIT 1) AS team_id, "
            "  COALESCE(w.score, 0) AS score, COALESCE(w.activities, 0) AS activities, "
            "  s.team_percentile, s.change_vs_baseline, s.insufficient_data "
            "FROM reports x LEFT JOIN ref_reps r ON r.tenant_id = :t AND r.rep_id = x.rep_id "
            "LEFT JOIN metric_rollups w ON w.tenant_id = :t AND w.level = 'rep' AND w.granularity = 'week' "
            "  AND w.period_start = :week AND w.entity_id = x.rep_id "
            "LEFT JOIN rep_period_stats s ON s.tenant_id = :t AND s.granularity = 'week' "
            "  AND s.period_start = :week AND s.rep_id = x.rep_id "
            "ORDER BY x.rep_id"
        ),
        params,
    )
    rows = [dict(row._mapping) for row in reps]
    attained = await conn.execute(
        text(
            f"WITH {_REPORTS} "
            f"SELECT rep_id, {', '.join(_GOAL_COLUMNS)} FROM goal_attainment "
            "WHERE tenant_id = :t AND granularity = 'week' AND period_start = :week "
            "AND rep_id IN (SELECT rep_id FROM reports) ORDER BY rep_id, metric"
        ),
        params,
    )
    by_rep: dict[str, list[dict[str, Any]]] = {}
    for rep_id, *values in attained:
        goal = dict(zip(_GOAL_COLUMNS, values, strict=True))
        goal["pace"] = None if goal["pace"] is None else float(goal["pace"])
        by_rep.setdefault(rep_id, []).append(goal)
    for row in rows:
        row["score"] = round(float(row["score"]), 4)
        row["goals"] = by_rep.get(row["rep_id"], [])
    insights = await conn.execute(
        text(
            f"WITH {_REPORTS} "
            "SELECT kind, subject_id, team_id, period_start, reasons, details FROM insights "
            "WHERE tenant_id = :t AND ("
            "  (kind IN ('at_risk_rep', 'bright_spot') AND subject_id IN (SELECT rep_id FROM reports)) "
            "  OR (kind = 'stale_deal' AND details->>'owner_rep_id' IN (SELECT rep_id FROM reports))) "
            "ORDER BY kind, subject_id"
        ),
        params,
    )
    grouped: dict[str, list[dict[str, Any]]] = {"at_risk_rep": [], "bright_spot": [], "stale_deal": []}
    for insight in insights:
        grouped[insight.kind].append(
            {
                "subject_id": insight.subject_id,
                "team_id": insight.team_id,
                "period_start": None if insight.period_start is None else insight.period_start.isoformat(),
                "reasons": list(insight.reasons),
                "details": insight.details or {},
            }
        )
    return {
        "manager_id": manager_id,
        "week_start": week.isoformat(),
        "reps": rows,
        "at_risk_reps": grouped["at_risk_rep"],
        "bright_spots": grouped["bright_spot"],
        "stale_deals": grouped["stale_deal"],
    }
