"""One tenant's row by its key: what an admin adapter reads, locks or removes (goals, alert webhooks)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection


async def keyed_row(conn: AsyncConnection, statement: str, tenant_id: str, key: str) -> Row[Any] | None:
    """The first row ``statement`` returns, its ``:t`` the tenant and ``:id`` the key; None: none."""
    return (await conn.execute(text(statement), {"t": tenant_id, "id": key})).first()
