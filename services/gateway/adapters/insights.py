"""Insights the metrics service computed (at-risk reps, stale deals, bright spots)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters import hierarchy
from services.gateway.schemas import InsightKind


async def list_insights(
    conn: AsyncConnection,
    tenant_id: str,
    kind: InsightKind,
    *,
    team_id: str | None,
    limit: int,
    rep_id: str | None = None,
) -> list[dict[str, Any]]:
    """The latest insights of ``kind``; with ``team_id``, about that team and every team below it;
    with ``rep_id``, about that rep (a stale deal: the deal she owns)."""
    rows = await conn.execute(
        text(
            f"""
            WITH RECURSIVE {hierarchy.SUBTREE}
            SELECT i.kind, i.subject_id, i.team_id, i.period_start, i.reasons, i.details, i.computed_at,
                   COALESCE(CASE WHEN i.kind = 'stale_deal' THEN d.name ELSE r.name END, '') AS subject_name
            FROM insights i
            LEFT JOIN ref_reps r ON r.tenant_id = i.tenant_id AND r.rep_id = i.subject_id
            LEFT JOIN ref_deals d ON d.tenant_id = i.tenant_id AND d.deal_id = i.subject_id
            WHERE i.tenant_id = :t AND i.kind = :kind
              AND (CAST(:team AS text) IS NULL OR i.team_id IN (SELECT team_id FROM subtree))
              AND (CAST(:rep AS text) IS NULL OR CASE WHEN i.kind = 'stale_deal'
                   THEN i.details->>'owner_rep_id' = :rep ELSE i.subject_id = :rep END)
            ORDER BY i.period_start DESC NULLS LAST, i.subject_id
            LIMIT :limit
            """
        ),
        {"t": tenant_id, "kind": kind.value, "team": team_id, "rep": rep_id, "limit": limit},
    )
    return [
        {
            "kind": row.kind,
            "subject_id": row.subject_id,
            "subject_name": row.subject_name,
            "team_id": row.team_id,
            "period_start": row.period_start,
            "reasons": list(row.reasons),
            "details": row.details or {},
            "computed_at": row.computed_at,
        }
        for row in rows
    ]
