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
) -> list[dict[str, Any]]:
    """The tenant's audit rows newest first, past the keyset ``after`` (at, audit_id)."""
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
    rows = await conn.execute(
        text(
            "SELECT audit_id, at, actor, credential, action, target, before, after FROM audit_log "
            f"WHERE {' AND '.join(clauses)} ORDER BY at DESC, audit_id DESC LIMIT :limit"
        ),
        params,
    )
    return [dict(row._mapping) for row in rows]
