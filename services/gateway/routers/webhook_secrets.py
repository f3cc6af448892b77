"""A tenant's webhook secrets (admin scope): list them masked, register a vendor-issued one, rotate."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from libs.common import audit
from libs.common.tenancy import (
    WEBHOOK_SOURCES,
    WebhookSecretInfo,
    check_webhook_secret,
    list_webhook_secrets,
    rotate_webhook_secret,
)
from services.gateway.auth import AdminCallerDep, AdminDep, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, invalid
from services.gateway.schemas import (
    WebhookSecretCreate,
    WebhookSecretCreated,
    WebhookSecretList,
    WebhookSecretRead,
)

router = APIRouter(prefix="/v1/webhook-secrets", tags=["webhook secrets"], responses=PROBLEM_RESPONSES)

SourcePath = Annotated[str, Path(description=f"One of {', '.join(WEBHOOK_SOURCES)}")]


def _pepper(request: Request) -> str:
    return str(request.app.state.settings.runtime.secret_key.get_secret_value())


def _source(source: str, location: str) -> str:
    if source not in WEBHOOK_SOURCES:
        invalid("source", f"must be one of {', '.join(WEBHOOK_SOURCES)}", location)
    return source


def _read(info: WebhookSecretInfo) -> WebhookSecretRead:
    return WebhookSecretRead(**info.model_dump())


@router.get("", response_model=WebhookSecretList)
async def get_webhook_secrets(
    request: Request,
    principal: AdminDep,
    conn: ConnDep,
    source: Annotated[str | None, Query(description="Only this source")] = None,
) -> WebhookSecretList:
    """Every secret, expired ones included, masked, newest first per source."""
    if source is not None:
        _source(source, "query")
    secrets = await list_webhook_secrets(conn, principal.tenant_id, _pepper(request), source)
    return WebhookSecretList(items=[_read(s) for s in secrets])


@router.post("/{source}", response_model=WebhookSecretCreated, status_code=201)
async def post_webhook_secret(
    request: Request, caller: AdminCallerDep, conn: ConnDep, source: SourcePath, body: WebhookSecretCreate
) -> WebhookSecretCreated:
    """Register the secret the vendor issued (or generate one); older secrets expire after `grace_hours`."""
    _source(source, "path")
    if body.secret is not None and (problem := check_webhook_secret(body.secret)) is not None:
        invalid("secret", problem, "body")
    principal = caller.principal
    secret, expiring = await rotate_webhook_secret(
        conn, principal.tenant_id, source, _pepper(request), timedelta(hours=body.grace_hours), body.secret
    )
    await audit.record_admin_action(
        conn,
        principal.tenant_id,
        audit_actor(caller),
        audit.AuditAction.WEBHOOK_SECRET_SET
        if body.secret is not None
        else audit.AuditAction.WEBHOOK_SECRET_ROTATED,
        f"webhook_secret:{source}",
        after={
            "source": source,
            "secret": secret,
            "older_expiring": expiring,
            "grace_hours": body.grace_hours,
        },
    )
    await conn.commit()
    [newest] = [s for s in await list_webhook_secrets(conn, principal.tenant_id, _pepper(request), source)][
        :1
    ]
    return WebhookSecretCreated(
        **_read(newest).model_dump(),
        secret=secret if body.secret is None else None,
        expiring=expiring,
    )
