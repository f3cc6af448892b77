"""The flag that tells the metrics service's read-model refresher a tenant needs recomputing.

Set by metrics when rollups move and by the gateway and CLI when an input of the read models
changes (an activity goal): one statement, so every writer flags a tenant the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def mark_dirty(conn: AsyncConnection, tenant_ids: Sequence[str]) -> None:
    """Flag tenants for the refresher's next tick (keeping the earliest time they were flagged)."""
    if not tenant_ids:
        return
    await conn.execute(
        text(
            "INSERT INTO metric_refresh_state (tenant_id, dirty_since) SELECT unnest(CAST(:t AS text[])), now() "
            "ON CONFLICT (tenant_id) DO UPDATE SET dirty_since = COALESCE(metric_refresh_state.dirty_since, now())"
        ),
        {"t": list(tenant_ids)},
    )
