"""Ingest's one write to the connectors' state table: "this mailbox has news, sync it soon"."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.domain.push import MailboxChanged

#: The connector providers a push route's notifications can name.
PUSHED_PROVIDERS = {
    "gmail": ("gmail",),
    "google-calendar": ("google-calendar",),
    "microsoft-graph": ("microsoft-mail", "microsoft-calendar"),
}


async def request_mailbox_sync(engine: AsyncEngine, tenant_id: str, changed: MailboxChanged) -> int:
    """Mark the named mailbox due now; returns how many mailboxes were marked (0 or 1).

    Idempotent: a redelivered notification marks it again and the connector's incremental
    sync from its stored cursor then finds nothing new.
    """
    if changed.channel_id is not None:
        where = "subscription_id = :key"
        key = changed.channel_id
    else:
        where = "address = :key"  # stored lower-cased, as the push names it
        key = changed.address or ""
    providers = PUSHED_PROVIDERS[changed.provider]
    extra = ""
    if changed.removed:
        # Graph dropped the subscription: the connector makes a new one at its next sync.
        extra = ", subscription_id = NULL, subscription_expires_at = NULL"
    elif changed.renew:
        extra = ", subscription_expires_at = now()"
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                f"UPDATE connector_mailboxes SET sync_requested_at = now(), next_sync_at = now(){extra} "
                f"WHERE tenant_id = :t AND provider = ANY(:p) AND {where} AND NOT paused"
            ),
            {"t": tenant_id, "p": list(providers), "key": key},
        )
    return int(result.rowcount)
