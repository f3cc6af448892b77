"""Mail and calendar connectors: each mailbox's health, and pausing or resuming one (admin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Request
from pydantic import ValidationError

from libs.common import audit
from libs.common.tenancy import encrypt_secret
from libs.common.web import Problem, field_errors
from services.gateway.adapters import connectors
from services.gateway.auth import AdminCallerDep, AdminDep, Caller, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep
from services.gateway.schemas import ConnectorCreate, ConnectorMailboxPage, ConnectorMailboxRead

router = APIRouter(tags=["connectors"], responses=PROBLEM_RESPONSES)

MailboxId = Path(ge=1, le=2**63 - 1, description="the mailbox id from GET /v1/connectors")


@router.get("/v1/connectors", response_model=ConnectorMailboxPage)
async def list_connector_mailboxes(principal: AdminDep, conn: ConnDep) -> ConnectorMailboxPage:
    """Every connected mailbox or calendar with its health, last success and last error."""
    rows = await connectors.mailboxes(conn, principal.tenant_id)
    return ConnectorMailboxPage(items=[ConnectorMailboxRead(**row) for row in rows])


#: What a service account key must carry for google-auth to sign with it.
SERVICE_ACCOUNT_KEYS = ("client_email", "private_key", "token_uri")


def _invalid(field: str, reason: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"body {field}: {reason}",
        errors=[{"in": "body", "field": field, "reason": reason}],
    )


def _credentials(create: ConnectorCreate) -> tuple[str, str, dict[str, Any], list[str]]:
    """(vendor, credentials, options, providers) of a valid request; 422 names the missing field."""
    if create.provider == "microsoft":
        for field in ("directory_tenant_id", "client_id", "client_secret"):
            if getattr(create, field) is None:
                raise _invalid(field, "required for microsoft")
        providers = [
            p for p, on in (("microsoft-mail", create.mail), ("microsoft-calendar", create.calendar)) if on
        ]
        if not providers:
            raise _invalid("mail", "choose mail and/or calendar")
        assert create.client_secret is not None
        options = {"directory_tenant_id": create.directory_tenant_id, "client_id": create.client_id}
        return "microsoft", create.client_secret.get_secret_value(), options, providers
    key = create.service_account
    if key is None:
        raise _invalid("service_account", f"required for {create.provider}")
    if key.get("type") != "service_account":
        raise _invalid("service_account.type", "must be service_account")
    for field in SERVICE_ACCOUNT_KEYS:
        if not isinstance(key.get(field), str) or not key[field]:
            raise _invalid(f"service_account.{field}", "required")
    if create.pubsub_topic is not None and create.provider != "gmail":
        raise _invalid("pubsub_topic", "only for gmail")
    options = {"pubsub_topic": create.pubsub_topic} if create.pubsub_topic else {}
    return "google", orjson.dumps(key).decode(), options, [create.provider]


@router.post("/v1/connectors", status_code=201, response_model=ConnectorMailboxPage)
async def connect_mailboxes(
    caller: AdminCallerDep,
    conn: ConnDep,
    request: Request,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "provider": "gmail",
                    "users": ["ana@acme.com"],
                    "backfill_days": 7,
                    "service_account": {
                        "type": "service_account",
                        "client_email": "...",
                        "private_key": "...",
                        "token_uri": "https://oauth2.googleapis.com/token",
                    },
                }
            ]
        ),
    ],
) -> ConnectorMailboxPage:
    """Connect mailboxes; the connectors process backfills ``backfill_days`` and then keeps them in sync."""
    try:
        create = ConnectorCreate.model_validate(body)
    except ValidationError as exc:
        errors = field_errors(exc, ("body",))
        raise Problem(
            422,
            "Invalid request",
            "; ".join(f"body {e['field']}: {e['reason']}" for e in errors),
            errors=errors,
        ) from None
    principal = caller.principal
    vendor, credentials, options, providers = _credentials(create)
    pepper = request.app.state.settings.runtime.secret_key.get_secret_value()
    since = datetime.now(UTC) - timedelta(days=create.backfill_days)
    addresses = sorted({u.strip().lower() for u in create.users})
    # Committed with the connection by connectors.connect: recorded exactly when it took effect.
    await audit.record_admin_action(
        conn,
        principal.tenant_id,
        audit_actor(caller),
        audit.AuditAction.CONNECTOR_CONNECTED,
        f"connector:{create.provider}",
        after={
            "provider": create.provider,
            "users": addresses,
            "backfill_days": create.backfill_days,
            "credentials": "***",
        },
    )
    rows = await connectors.connect(
        conn,
        principal.tenant_id,
        vendor,
        encrypt_secret(credentials, pepper),
        options,
        providers,
        addresses,
        since,
    )
    return ConnectorMailboxPage(items=[ConnectorMailboxRead(**row) for row in rows])


async def _set_paused(caller: Caller, conn: ConnDep, mailbox_id: int, paused: bool) -> ConnectorMailboxRead:
    row = await connectors.set_paused(conn, caller.principal.tenant_id, mailbox_id, paused)
    if row is None:
        raise Problem(404, "Not found", f"no connected mailbox {mailbox_id}")
    await audit.record_admin_action(
        conn,
        caller.principal.tenant_id,
        audit_actor(caller),
        audit.AuditAction.CONNECTOR_PAUSED if paused else audit.AuditAction.CONNECTOR_RESUMED,
        f"connector_mailbox:{mailbox_id}",
        before={"paused": not paused},
        after={"paused": paused},
    )
    await conn.commit()
    return ConnectorMailboxRead(**row)


@router.post("/v1/connectors/{mailbox_id}/pause", response_model=ConnectorMailboxRead)
async def pause_connector_mailbox(
    caller: AdminCallerDep, conn: ConnDep, mailbox_id: int = MailboxId
) -> ConnectorMailboxRead:
    """Stop fetching this mailbox (push notifications are acknowledged and ignored)."""
    return await _set_paused(caller, conn, mailbox_id, True)


@router.post("/v1/connectors/{mailbox_id}/resume", response_model=ConnectorMailboxRead)
async def resume_connector_mailbox(
    caller: AdminCallerDep, conn: ConnDep, mailbox_id: int = MailboxId
) -> ConnectorMailboxRead:
    """Fetch this mailbox again, at once, from its stored cursor."""
    return await _set_paused(caller, conn, mailbox_id, False)
