"""A tenant's outbound alert webhooks (written by admins, delivered by the metrics service)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.audit import Actor, AuditAction, record_admin_action
from services.gateway.adapters.rows import keyed_row
from services.gateway.domain.urls import audited_url

_COLUMNS = "webhook_id, url, format, created_at, created_by"
_DELETE = f"DELETE FROM alert_webhooks WHERE tenant_id = :t AND webhook_id = :id RETURNING {_COLUMNS}"


async def list_webhooks(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(f"SELECT {_COLUMNS} FROM alert_webhooks WHERE tenant_id = :t ORDER BY created_at, webhook_id"),
        {"t": tenant_id},
    )
    return [dict(row._mapping) for row in rows]


async def add_webhook(
    conn: AsyncConnection,
    tenant_id: str,
    webhook_id: str,
    url: str,
    body_format: str,
    secret: str,
    created_by: str,
    actor: Actor,
) -> dict[str, Any]:
    """Register the webhook, in the audit log; the caller commits."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO alert_webhooks (tenant_id, webhook_id, url, format, secret, created_by) "
                f"VALUES (:t, :id, :url, :format, :secret, :by) RETURNING {_COLUMNS}"
            ),
            {
                "t": tenant_id,
                "id": webhook_id,
                "url": url,
                "format": body_format,
                "secret": secret,
                "by": created_by,
            },
        )
    ).one()
    saved = dict(row._mapping)
    await record_admin_action(
        conn,
        tenant_id,
        actor,
        AuditAction.ALERT_WEBHOOK_ADDED,
        f"alert_webhook:{webhook_id}",
        after=_audited(saved),
    )
    return saved


async def delete_webhook(
    conn: AsyncConnection, tenant_id: str, webhook_id: str, actor: Actor
) -> dict[str, Any] | None:
    """Remove the webhook and its pending deliveries, in the audit log; the webhook removed (None:
    there was none). The caller commits."""
    removed = await keyed_row(conn, _DELETE, tenant_id, webhook_id)
    if removed is None:
        return None
    await conn.execute(
        text(
            "DELETE FROM alert_deliveries WHERE tenant_id = :t AND webhook_id = :id "
            "AND delivered_at IS NULL AND gave_up_at IS NULL"
        ),
        {"t": tenant_id, "id": webhook_id},
    )
    gone = dict(removed._mapping)
    await record_admin_action(
        conn,
        tenant_id,
        actor,
        AuditAction.ALERT_WEBHOOK_REMOVED,
        f"alert_webhook:{webhook_id}",
        before=_audited(gone),
    )
    return gone


def _audited(webhook: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a webhook: the host it posts to and how, never its secret nor
    its path and query, which carry one in an incoming-webhook URL (Slack's
    ``/services/T.../B.../<token>``); ``GET /v1/alert-webhooks`` shows an admin the whole URL."""
    return {"url": audited_url(webhook["url"]), "format": webhook["format"]}
