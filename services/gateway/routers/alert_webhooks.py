"""Outbound alert webhooks: where insight changes are POSTed (Standard Webhooks signed, or Slack)."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from libs.common import audit
from services.gateway.adapters import alert_webhooks
from services.gateway.auth import AdminCallerDep, AdminDep, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, not_found
from services.gateway.domain.urls import audited_url
from services.gateway.schemas import (
    AlertWebhookCreate,
    AlertWebhookCreated,
    AlertWebhookList,
    AlertWebhookRead,
)

router = APIRouter(prefix="/v1/alert-webhooks", tags=["alerts"], responses=PROBLEM_RESPONSES)

WebhookId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]


@router.get("", response_model=AlertWebhookList)
async def list_alert_webhooks(principal: AdminDep, conn: ConnDep) -> AlertWebhookList:
    """The tenant's alert webhooks (secrets are shown only when created)."""
    rows = await alert_webhooks.list_webhooks(conn, principal.tenant_id)
    return AlertWebhookList(items=[AlertWebhookRead(**row) for row in rows])


@router.post("", response_model=AlertWebhookCreated, status_code=201)
async def add_alert_webhook(
    caller: AdminCallerDep, conn: ConnDep, body: AlertWebhookCreate
) -> AlertWebhookCreated:
    """Register a webhook; the answer carries its signing secret, shown this once."""
    principal = caller.principal
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    saved = await alert_webhooks.add_webhook(
        conn, principal.tenant_id, str(uuid.uuid4()), str(body.url), body.format, secret, principal.key_id
    )
    await audit.record_admin_action(
        conn,
        principal.tenant_id,
        audit_actor(caller),
        audit.AuditAction.ALERT_WEBHOOK_ADDED,
        f"alert_webhook:{saved['webhook_id']}",
        after=_audited(saved),
    )
    await conn.commit()
    return AlertWebhookCreated(**saved, secret=secret)


@router.delete("/{webhook_id}", status_code=204)
async def delete_alert_webhook(caller: AdminCallerDep, conn: ConnDep, webhook_id: WebhookId) -> Response:
    """Remove a webhook and its pending deliveries."""
    tenant_id = caller.principal.tenant_id
    removed = await alert_webhooks.delete_webhook(conn, tenant_id, webhook_id)
    if removed is None:
        not_found("alert webhook", webhook_id)
    await audit.record_admin_action(
        conn,
        tenant_id,
        audit_actor(caller),
        audit.AuditAction.ALERT_WEBHOOK_REMOVED,
        f"alert_webhook:{webhook_id}",
        before=_audited(removed),
    )
    await conn.commit()
    return Response(status_code=204)


def _audited(webhook: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a webhook: the host it posts to and how, never its secret nor
    its path and query, which carry one in an incoming-webhook URL (Slack's
    ``/services/T.../B.../<token>``); ``GET /v1/alert-webhooks`` shows an admin the whole URL."""
    return {"url": audited_url(webhook["url"]), "format": webhook["format"]}
