"""Versioned per-tenant settings (scoring model, insight thresholds): read the latest, append the next."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: table -> the jsonb column holding the document.
_TABLES = {"scoring_models": "model", "insight_thresholds": "thresholds"}


async def latest(conn: AsyncConnection, tenant_id: str, table: str) -> dict[str, Any] | None:
    column = _TABLES[table]
    row = (
        await conn.execute(
            text(
                f"SELECT version, {column} AS document, created_at, created_by FROM {table} "
                "WHERE tenant_id = :t ORDER BY version DESC LIMIT 1"
            ),
            {"t": tenant_id},
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def next_version(conn: AsyncConnection, tenant_id: str, table: str, floor: int) -> int:
    """The version the next insert takes: one past the latest, and at least ``floor``."""
    row = (
        await conn.execute(
            text(f"SELECT max(version) AS v FROM {table} WHERE tenant_id = :t"), {"t": tenant_id}
        )
    ).one()
    return max(floor, (row.v or 0) + 1)


async def insert(
    conn: AsyncConnection, tenant_id: str, table: str, version: int, document: dict[str, Any], created_by: str
) -> dict[str, Any]:
    """Append ``version``; a concurrent writer that took it first raises ``IntegrityError``."""
    column = _TABLES[table]
    row = (
        await conn.execute(
            text(
                f"INSERT INTO {table} (tenant_id, version, {column}, created_by) "
                "VALUES (:t, :v, CAST(:doc AS jsonb), :by) RETURNING version, created_at, created_by"
            ),
            {"t": tenant_id, "v": version, "doc": orjson.dumps(document).decode(), "by": created_by},
        )
    ).one()
    return {**row._mapping, "document": document}
