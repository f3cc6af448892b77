"""A manager's weekly digest: their reps' week, insights and goals, from the read models."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters import goals, hierarchy


async def weekly_digest(conn: AsyncConnection, tenant_id: str, manager_id: str, week: date) -> dict[str, Any]:
    """The reps ``manager_id`` manages (directly or not) in the week starting ``week``: their team on
    the week's last day, score and activities from the rollups, standing and goals from the
    metrics service's read models (null or empty when not computed), and the current insights."""
    params = {"t": tenant_id, "manager": manager_id, "week": week}
    reps = await conn.execute(
        text(
            f"WITH RECURSIVE {hierarchy.REPORTS} "
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
            f"WITH RECURSIVE {hierarchy.REPORTS} "
            f"SELECT rep_id, {', '.join(goals.ATTAINMENT_COLUMNS)} FROM goal_attainment "
            "WHERE tenant_id = :t AND granularity = 'week' AND period_start = :week "
            "AND rep_id IN (SELECT rep_id FROM reports) ORDER BY rep_id, metric"
        ),
        params,
    )
    by_rep: dict[str, list[dict[str, Any]]] = {}
    for rep_id, *values in attained:
        by_rep.setdefault(rep_id, []).append(goals.attainment_of(values))
    for row in rows:
        row["score"] = round(float(row["score"]), 4)
        row["goals"] = by_rep.get(row["rep_id"], [])
    insights = await conn.execute(
        text(
            f"WITH RECURSIVE {hierarchy.REPORTS} "
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
                "period_start": insight.period_start,
                "reasons": list(insight.reasons),
                "details": insight.details or {},
            }
        )
    return {
        "manager_id": manager_id,
        "week_start": week,
        "reps": rows,
        "at_risk_reps": grouped["at_risk_rep"],
        "bright_spots": grouped["bright_spot"],
        "stale_deals": grouped["stale_deal"],
    }
