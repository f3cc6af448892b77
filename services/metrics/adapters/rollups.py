"""Set-based writes of contributions and rollup deltas: a few statements per batch, whatever its size."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.metrics.domain.definitions import Counter

#: Rollup columns: every counter of the domain but deals won (read from CRM deals), plus an activity
#: count; ``score`` is the weighted sum of the counters under the tenant's scoring model, kept
#: in step with them so periods aggregate by plain sums.
COUNTER_COLUMNS: tuple[str, ...] = ("activities", *(c.value for c in Counter if c is not Counter.DEALS_WON))
COLUMNS: tuple[str, ...] = (*COUNTER_COLUMNS, "score")
_TYPES = {"score": "float8"}


@dataclass(frozen=True, slots=True)
class StoredContribution:
    version: int
    rep_id: str | None
    team_id: str | None
    deal_id: str | None
    account_id: str | None
    status: str
    day: date | None
    counts: dict[str, float]
    #: The activity revision whose facts are counted (0 for rows written before it was kept).
    revision: int = 0

    @property
    def order(self) -> tuple[int, int]:
        """What a newer contribution must exceed: a higher revision, else a higher version."""
        return (self.revision, self.version)


async def load_contributions(
    conn: AsyncConnection, tenant_id: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StoredContribution]:
    """The contribution currently applied for each activity, locked until commit."""
    result = await conn.execute(
        text(
            "SELECT activity_id, version, revision, rep_id, team_id, deal_id, account_id, status, day, "
            f"{', '.join(COLUMNS)} "
            "FROM metric_contributions WHERE tenant_id = :t AND activity_id = ANY(:ids) ORDER BY activity_id FOR UPDATE"
        ),
        {"t": tenant_id, "ids": list(ids)},
    )
    out = {}
    for row in result.mappings():
        out[row["activity_id"]] = StoredContribution(
            row["version"],
            row["rep_id"],
            row["team_id"],
            row["deal_id"],
            row["account_id"],
            row["status"],
            row["day"],
            {c: row[c] for c in COLUMNS},
            row["revision"],
        )
    return out


async def upsert_contributions(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    fixed = [
        "tenant_id",
        "activity_id",
        "version",
        "revision",
        "rep_id",
        "team_id",
        "deal_id",
        "account_id",
        "status",
        "occurred_at",
        "day",
        "kind",
        "contact_ids",
    ]
    types = {
        "tenant_id": "text",
        "activity_id": "uuid",
        "version": "int",
        "revision": "bigint",
        "rep_id": "text",
        "team_id": "text",
        "deal_id": "text",
        "account_id": "text",
        "status": "text",
        "occurred_at": "timestamptz",
        "day": "date",
        "kind": "text",
        "contact_ids": "text",
    }
    columns = [*fixed, *COLUMNS]
    types.update(_TYPES)
    # unnest cannot take an array of arrays of different lengths: contact ids travel as one
    # JSON array per row (ids are free text, commas included) and are unpacked in SQL.
    selects = ", ".join(
        "ARRAY(SELECT jsonb_array_elements_text(CAST(contact_ids AS jsonb)))" if c == "contact_ids" else c
        for c in columns
    )
    casts = ", ".join(f"CAST(:{c} AS {types.get(c, 'bigint')}[])" for c in columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:])
    params = {c: [r[c] for r in rows] for c in columns}
    params["contact_ids"] = [orjson.dumps(list(r["contact_ids"])).decode() for r in rows]
    await conn.execute(
        text(
            f"INSERT INTO metric_contributions ({', '.join(columns)}) SELECT {selects} "
            f"FROM unnest({casts}) AS u({', '.join(columns)}) "
            f"ON CONFLICT (tenant_id, activity_id) DO UPDATE SET {updates} "
            # The same order as plan_batch: a lower revision never replaces a higher one's facts.
            "WHERE (metric_contributions.revision, metric_contributions.version) "
            "< (EXCLUDED.revision, EXCLUDED.version)"
        ),
        params,
    )


RollupCell = tuple[str, str, str, str, date]  # tenant, level, entity, granularity, period_start


async def apply_rollup_deltas(conn: AsyncConnection, deltas: Mapping[RollupCell, Mapping[str, float]]) -> int:
    """Add each cell's deltas (negative for retractions) in one statement; sorted to avoid deadlocks."""
    # Primary-key order: neighbouring rows share index pages, and one order for all avoids deadlocks.
    cells = sorted(
        (k for k, v in deltas.items() if any(v.values())), key=lambda c: (c[0], c[1], c[3], c[4], c[2])
    )
    if not cells:
        return 0
    params: dict[str, list[Any]] = {
        "tenant_id": [c[0] for c in cells],
        "level": [c[1] for c in cells],
        "entity_id": [c[2] for c in cells],
        "granularity": [c[3] for c in cells],
        "period_start": [c[4] for c in cells],
    }
    for column in COLUMNS:
        params[column] = [deltas[c].get(column, 0) for c in cells]
    keys = ["tenant_id", "level", "entity_id", "granularity", "period_start"]
    types = {
        "tenant_id": "text",
        "level": "text",
        "entity_id": "text",
        "granularity": "text",
        "period_start": "date",
        **_TYPES,
    }
    casts = ", ".join(f"CAST(:{c} AS {types.get(c, 'bigint')}[])" for c in [*keys, *COLUMNS])
    updates = ", ".join(f"{c} = metric_rollups.{c} + EXCLUDED.{c}" for c in COLUMNS)
    await conn.execute(
        text(
            f"INSERT INTO metric_rollups ({', '.join([*keys, *COLUMNS])}) SELECT * FROM unnest({casts}) "
            f"ON CONFLICT (tenant_id, level, granularity, period_start, entity_id) DO UPDATE SET {updates}"
        ),
        params,
    )
    return len(cells)


async def mark_dirty(conn: AsyncConnection, tenant_ids: Sequence[str]) -> None:
    """Flag tenants whose rollups moved, for the read-model refresher."""
    if not tenant_ids:
        return
    await conn.execute(
        text(
            "INSERT INTO metric_refresh_state (tenant_id, dirty_since) SELECT unnest(CAST(:t AS text[])), now() "
            "ON CONFLICT (tenant_id) DO UPDATE SET dirty_since = COALESCE(metric_refresh_state.dirty_since, now())"
        ),
        {"t": list(tenant_ids)},
    )


async def tenant_calendar_settings(
    conn: AsyncConnection, tenant_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    result = await conn.execute(
        text(
            "SELECT tenant_id, timezone, fiscal_year_start_month, settings FROM tenants WHERE tenant_id = ANY(:t)"
        ),
        {"t": list(tenant_ids)},
    )
    return {
        row.tenant_id: {
            "timezone": row.timezone,
            "fiscal_year_start_month": row.fiscal_year_start_month,
            "settings": row.settings or {},
        }
        for row in result
    }


def utc_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
