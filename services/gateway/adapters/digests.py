"""Managers' weekly digests, as the metrics service stored them once each week was over."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def weekly_digest(
    conn: AsyncConnection, tenant_id: str, manager_id: str, week: date
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text(
                "SELECT digest FROM manager_digests WHERE tenant_id = :t AND manager_id = :m AND week_start = :w"
            ),
            {"t": tenant_id, "m": manager_id, "w": week},
        )
    ).first()
    if row is None:
        return None
    digest: dict[str, Any] = row.digest
    return digest
