"""SQL of the read-model refresher: what it reads to compute, and the rows it replaces."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.metrics.adapters.rollups import COUNTER_COLUMNS
from services.metrics.domain.definitions import MetricCounts
from services.metrics.domain.insights import OpenDealRow
from services.metrics.domain.read_models import Membership, RepPeriodStat

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


async def rep_scores(
    conn: AsyncConnection, tenant_id: str, granularity: str, first: date, last: date
) -> dict[str, dict[date, float]]:
    """Rep scores per period start in ``[first, last]``; a row without counted activity is no data."""
    result = await conn.execute(
        text(
            "SELECT entity_id, period_start, score FROM metric_rollups "
            "WHERE tenant_id = :t AND level = 'rep' AND granularity = :g "
            "AND period_start BETWEEN :first AND :last AND activities > 0"
        ),
        {"t": tenant_id, "g": granularity, "first": first, "last": last},
    )
    scores: dict[str, dict[date, float]] = defaultdict(dict)
    for row in result:
        scores[row.entity_id][row.period_start] = float(row.score)
    return scores


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


async def open_deals(conn: AsyncConnection, tenant_id: str) -> list[OpenDealRow]:
    """Open deals with their engagement from the contributions credited to them."""
    result = await conn.execute(
        text(
            "SELECT d.deal_id, d.owner_rep_id, d.created_at, "
            "  max(c.occurred_at) AS last_activity_at, "
            "  max(c.occurred_at) FILTER (WHERE c.buyer_replies > 0) AS last_buyer_reply_at, "
            "  (SELECT count(DISTINCT contact) FROM metric_contributions e, unnest(e.contact_ids) AS contact "
            "   WHERE e.tenant_id = d.tenant_id AND e.deal_id = d.deal_id) AS engaged "
            "FROM ref_deals d LEFT JOIN metric_contributions c "
            "  ON c.tenant_id = d.tenant_id AND c.deal_id = d.deal_id "
            "WHERE d.tenant_id = :t AND NOT d.is_closed AND NOT d.deleted AND d.merged_into IS NULL "
            "GROUP BY d.tenant_id, d.deal_id, d.owner_rep_id, d.created_at"
        ),
        {"t": tenant_id},
    )
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


async def replace_rep_period_stats(
    conn: AsyncConnection, tenant_id: str, granularity: str, stats: Sequence[RepPeriodStat]
) -> None:
    await conn.execute(
        text("DELETE FROM rep_period_stats WHERE tenant_id = :t AND granularity = :g"),
        {"t": tenant_id, "g": granularity},
    )
    if not stats:
        return
    await conn.execute(
        text(
            "INSERT INTO rep_period_stats (tenant_id, granularity, period_start, rep_id, team_id, score, "
            "team_percentile, baseline_score, baseline_periods, change_vs_baseline) "
            "SELECT :t, :g, * FROM unnest(CAST(:period_start AS date[]), CAST(:rep_id AS text[]), "
            "CAST(:team_id AS text[]), CAST(:score AS float8[]), CAST(:team_percentile AS float8[]), "
            "CAST(:baseline_score AS float8[]), CAST(:baseline_periods AS int[]), "
            "CAST(:change_vs_baseline AS float8[]))"
        ),
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
