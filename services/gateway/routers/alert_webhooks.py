"""Outbound alert webhooks: where insight changes are POSTed (Standard Webhooks signed, or Slack)."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from services.gateway.adapters import alert_webhooks
from services.gateway.auth import AdminCallerDep, AdminDep, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, not_found
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
        conn,
        principal.tenant_id,
        str(uuid.uuid4()),
        str(body.url),
        body.format,
        secret,
        principal.key_id,
        audit_actor(caller),
    )
    await conn.commit()
    return AlertWebhookCreated(**saved, secret=secret)


@router.delete("/{webhook_id}", status_code=204)
async def delete_alert_webhook(caller: AdminCallerDep, conn: ConnDep, webhook_id: WebhookId) -> Response:
    """Remove a webhook and its pending deliveries."""
    tenant_id = caller.principal.tenant_id
    if await alert_webhooks.delete_webhook(conn, tenant_id, webhook_id, audit_actor(caller)) is None:
        not_found("alert webhook", webhook_id)
    await conn.commit()
    return Response(status_code=204)
