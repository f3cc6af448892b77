"""The admin audit log, newest first, a keyset page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def list_admin_actions(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    limit: int,
    action: str | None = None,
    since: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    max_bytes: int | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The tenant's audit rows newest first, past the keyset ``after`` (at, audit_id), and whether
    older ones remain. With ``max_bytes``, the page stops before its states before and after (as
    stored) pass it, one row at least: a change of ``rep_aliases`` records megabytes each side.
    Only the rows kept are read out."""
    clauses = ["tenant_id = :t"]
    params: dict[str, Any] = {"t": tenant_id, "limit": limit}
    if action is not None:
        clauses.append("action = :action")
        params["action"] = action
    if since is not None:
        clauses.append("at >= :since")
        params["since"] = since
    if after is not None:
        clauses.append("(at, audit_id) < (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    params["budget"] = max_bytes
    size = "coalesce(pg_column_size(before), 0) + coalesce(pg_column_size(after), 0)"
    rows = await conn.execute(
        text(
            "SELECT audit_id, at, actor, credential, action, target, before, after, remaining FROM ("
            "  SELECT audit_id, at, actor, credential, action, target, before, after,"
            "         count(*) OVER () AS remaining,"
            f"        sum({size}) OVER (ORDER BY at DESC, audit_id DESC) - ({size}) AS ahead"
            f"  FROM audit_log WHERE {' AND '.join(clauses)} ORDER BY at DESC, audit_id DESC LIMIT :limit"
            ") page WHERE CAST(:budget AS bigint) IS NULL OR ahead < :budget ORDER BY at DESC, audit_id DESC"
        ),
        params,
    )
    found = [dict(row._mapping) for row in rows]
    remaining = found[0]["remaining"] if found else 0
    for row in found:
        del row["remaining"]
    return found, remaining > len(found)
