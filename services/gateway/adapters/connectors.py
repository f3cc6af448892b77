"""The connectors' mailbox state as the admin API shows it (never the credentials)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: The same health words as ``spm connectors list``: failing wins over backfilling, stale after 1 h.
_COLUMNS = """
    mailbox_id, provider, address, paused, fetched, last_success_at, last_error, last_error_at,
    subscription_expires_at,
    CASE
        WHEN paused THEN 'paused'
        WHEN last_error_at IS NOT NULL AND (last_success_at IS NULL OR last_error_at > last_success_at)
            THEN 'failing'
        WHEN full_sync_since IS NOT NULL THEN 'backfilling'
        WHEN last_success_at IS NULL THEN 'pending'
        WHEN last_success_at < now() - interval '1 hour' THEN 'stale'
        ELSE 'ok'
    END AS health
"""


async def mailboxes(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(f"SELECT {_COLUMNS} FROM connector_mailboxes WHERE tenant_id = :t ORDER BY provider, address"),
        {"t": tenant_id},
    )
    return [dict(r._mapping) for r in rows]


async def set_paused(
    conn: AsyncConnection, tenant_id: str, mailbox_id: int, paused: bool
) -> dict[str, Any] | None:
    """Pause or resume one of the tenant's mailboxes; None when it has no such mailbox."""
    row = (
        await conn.execute(
            text(
                "UPDATE connector_mailboxes SET paused = :paused, next_sync_at = now() "
                f"WHERE tenant_id = :t AND mailbox_id = :id RETURNING {_COLUMNS}"
            ),
            {"t": tenant_id, "id": mailbox_id, "paused": paused},
        )
    ).one_or_none()
    await conn.commit()
    return dict(row._mapping) if row is not None else None


async def connect(
    conn: AsyncConnection,
    tenant_id: str,
    vendor: str,
    credentials_encrypted: str,
    options: dict[str, Any],
    providers: Sequence[str],
    addresses: Sequence[str],
    since: datetime,
) -> list[dict[str, Any]]:
    """Store a connection and its mailboxes (each due for a full sync from ``since``), as
    ``spm connectors add`` does; an address already connected moves to it and keeps its cursor."""
    connection_id = await conn.scalar(
        text(
            "INSERT INTO connector_connections (tenant_id, vendor, credentials_encrypted, options) "
            "VALUES (:t, :v, :c, CAST(:o AS jsonb)) RETURNING connection_id"
        ),
        {"t": tenant_id, "v": vendor, "c": credentials_encrypted, "o": orjson.dumps(options).decode()},
    )
    rows = await conn.execute(
        text(
            f"""
            INSERT INTO connector_mailboxes AS m
                (connection_id, tenant_id, provider, address, full_sync_since, backfill_since)
            SELECT :c, :t, p, a, :since, :since FROM unnest(CAST(:p AS text[])) AS p, unnest(CAST(:a AS text[])) AS a
            ON CONFLICT (tenant_id, provider, address)
            DO UPDATE SET connection_id = EXCLUDED.connection_id, paused = false, next_sync_at = now()
            RETURNING {_COLUMNS}
            """
        ),
        {"c": connection_id, "t": tenant_id, "p": list(providers), "a": list(addresses), "since": since},
    )
    created = sorted((dict(r._mapping) for r in rows), key=lambda r: (r["provider"], r["address"]))
    await conn.commit()
    return created
