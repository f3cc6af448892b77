"""Mail and calendar connectors: each mailbox's health, and pausing or resuming one (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Path

from libs.common.web import Problem
from services.gateway.adapters import connectors
from services.gateway.auth import AdminDep
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep
from services.gateway.schemas import ConnectorMailboxPage, ConnectorMailboxRead

router = APIRouter(tags=["connectors"], responses=PROBLEM_RESPONSES)

MailboxId = Path(ge=1, le=2**63 - 1, description="the mailbox id from GET /v1/connectors")


@router.get("/v1/connectors", response_model=ConnectorMailboxPage)
async def list_connector_mailboxes(principal: AdminDep, conn: ConnDep) -> ConnectorMailboxPage:
    """Every connected mailbox or calendar with its health, last success and last error."""
    rows = await connectors.mailboxes(conn, principal.tenant_id)
    return ConnectorMailboxPage(items=[ConnectorMailboxRead(**row) for row in rows])


async def _set_paused(
    principal: AdminDep, conn: ConnDep, mailbox_id: int, paused: bool
) -> ConnectorMailboxRead:
    row = await connectors.set_paused(conn, principal.tenant_id, mailbox_id, paused)
    if row is None:
        raise Problem(404, "Not found", f"no connected mailbox {mailbox_id}")
    return ConnectorMailboxRead(**row)


@router.post("/v1/connectors/{mailbox_id}/pause", response_model=ConnectorMailboxRead)
async def pause_connector_mailbox(
    principal: AdminDep, conn: ConnDep, mailbox_id: int = MailboxId
) -> ConnectorMailboxRead:
    """Stop fetching this mailbox (push notifications are acknowledged and ignored)."""
    return await _set_paused(principal, conn, mailbox_id, True)


@router.post("/v1/connectors/{mailbox_id}/resume", response_model=ConnectorMailboxRead)
async def resume_connector_mailbox(
    principal: AdminDep, conn: ConnDep, mailbox_id: int = MailboxId
) -> ConnectorMailboxRead:
    """Fetch this mailbox again, at once, from its stored cursor."""
    return await _set_paused(principal, conn, mailbox_id, False)
