"""The SQL of the retention purge: what is past retention, deleted in bounded batches, and the record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.db.deal_engagement import recompute_deals_of
from libs.common.db.webhook_state import webhook_state_lock

#: Tables with the activity's time, purged by it; each takes the rows keyed by the same ids along.
#: An attribution is written in the same transaction as its activity and erased with it, so it
#: goes with the activity's batch: ``attributions`` needs no index on its own time. So does a
#: version the held sweep queued and has not published yet (``held_sweep_outbox``): published
#: after its activity was purged, it would add the activity to a period already purged.
DATED_TABLES: dict[str, tuple[str, ...]] = {
    "activities": (
        "ingest_seen_events",
        "ingest_meeting_keys",
        "attributions",
        "attribution_superseded",
        "attribution_overrides",
        "meeting_removals",
        "held_sweep_outbox",
    ),
    "metric_contributions": (),
}

#: Tables whose purged rows engage deals: their deals' engagement is recomputed by the refresher.
_ENGAGING = frozenset({"metric_contributions"})

#: ``attribution_history`` (a view) is every version: the current ones and the superseded ones.
#: The report counts versions removed under that name, as it did when history was a table.
_VERSIONS = "attribution_history"


async def tenant_settings(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    rows = await conn.execute(text("SELECT tenant_id, settings FROM tenants ORDER BY tenant_id"))
    return [(row.tenant_id, dict(row.settings or {})) for row in rows]


async def purge_dated(
    conn: AsyncConnection, table: str, tenant_id: str, cutoff: datetime, limit: int
) -> dict[str, int]:
    """Delete up to ``limit`` rows of ``table`` that occurred before ``cutoff``, and their dependants."""
    delete = (
        f"DELETE FROM {table} WHERE tenant_id = :t AND activity_id IN ("
        f"  SELECT activity_id FROM {table} WHERE tenant_id = :t AND occurred_at < :cutoff"
        "  ORDER BY occurred_at LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING activity_id"
    )
    if table in _ENGAGING:
        delete = (
            f"WITH gone AS ({delete}, tenant_id, engaged_deal_ids), "
            f"flagged AS ({recompute_deals_of('gone')}) SELECT activity_id FROM gone"
        )
    ids = [
        row.activity_id
        for row in await conn.execute(text(delete), {"t": tenant_id, "cutoff": cutoff, "limit": limit})
    ]
    counts = {table: len(ids)}
    for dependant in DATED_TABLES[table]:
        result = await conn.execute(
            text(f"DELETE FROM {dependant} WHERE tenant_id = :t AND activity_id = ANY(:ids)"),
            {"t": tenant_id, "ids": ids},
        )
        counts[dependant] = int(result.rowcount)
    if "attribution_superseded" in counts:
        counts[_VERSIONS] = counts["attributions"] + counts.pop("attribution_superseded")
    return counts


async def purge_webhook_state(conn: AsyncConnection, tenant_id: str, cutoff: datetime) -> int:
    """The tenant's rows untouched since ``cutoff``, each under its advisory lock
    (``webhook_state_lock``) held until the purge commits, so that the duplicate ledger's shared
    statement skips the row meanwhile rather than wait; a row a fold holds now is in use, not
    stale: it is left for the next purge."""
    result = await conn.execute(
        text(
            "WITH stale AS MATERIALIZED ("
            "  SELECT tenant_id, source, object_key FROM webhook_state"
            "  WHERE tenant_id = :t AND updated_at < :cutoff"
            "), free AS MATERIALIZED ("
            f"  SELECT * FROM stale WHERE pg_try_advisory_xact_lock("
            f"{webhook_state_lock('tenant_id', 'source', 'object_key')})"
            ") "
            "DELETE FROM webhook_state w USING free f "
            "WHERE w.tenant_id = f.tenant_id AND w.source = f.source AND w.object_key = f.object_key "
            "AND w.updated_at < :cutoff"
        ),
        {"t": tenant_id, "cutoff": cutoff},
    )
    return int(result.rowcount)


async def prune_ledgers(conn: AsyncConnection, cutoff: datetime) -> dict[str, int]:
    """Ingest's duplicate ledgers, every tenant at once: rows older than the redelivery window."""
    seen = await conn.execute(text("DELETE FROM ingest_seen_events WHERE seen_at < :c"), {"c": cutoff})
    keys = await conn.execute(text("DELETE FROM ingest_meeting_keys WHERE created_at < :c"), {"c": cutoff})
    undated = await conn.execute(
        text("DELETE FROM ingest_undated_deletions WHERE read_at < :c"), {"c": cutoff}
    )
    blocks = await conn.execute(text("DELETE FROM ingest_time_blocks WHERE read_at < :c"), {"c": cutoff})
    return {
        "ingest_seen_events": int(seen.rowcount),
        "ingest_meeting_keys": int(keys.rowcount),
        "ingest_undated_deletions": int(undated.rowcount),
        "ingest_time_blocks": int(blocks.rowcount),
    }


async def record_purge(
    conn: AsyncConnection, tenant_id: str, cutoff: datetime, counts: dict[str, int]
) -> None:
    await conn.execute(
        text(
            "INSERT INTO retention_purges (tenant_id, cutoff, counts) VALUES (:t, :c, CAST(:counts AS jsonb))"
        ),
        {"t": tenant_id, "c": cutoff, "counts": orjson.dumps(counts).decode()},
    )
