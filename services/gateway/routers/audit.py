"""The admin audit log (admin scope): who changed what, when, and the state before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from libs.common.audit import AuditAction
from services.gateway.adapters import audit
from services.gateway.auth import AdminDep
from services.gateway.deps import (
    PROBLEM_RESPONSES,
    ConnDep,
    CursorQuery,
    LimitQuery,
    OptionsDep,
    decode_cursor,
    encode_cursor,
    invalid,
    page_size,
)
from services.gateway.schemas import AuditEntryRead, AuditPage

#: A page of the audit log stops before its states before and after pass this (as stored), one
#: entry at least: a change of ``rep_aliases`` records megabytes each side.
AUDIT_PAGE_BYTES = 4 * 1024 * 1024

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)


def _audit_after(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    at, audit_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), int(audit_id)
    except ValueError:
        invalid("cursor", "is not a cursor this API issued")


@router.get("", response_model=AuditPage)
async def list_audit(
    principal: AdminDep,
    conn: ConnDep,
    options: OptionsDep,
    action: Annotated[
        AuditAction | None, Query(description="Only this action, e.g. `api_key.revoked`")
    ] = None,
    since: Annotated[
        datetime | None, Query(description="Only actions at or after this instant (ISO 8601)")
    ] = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> AuditPage:
    """The tenant's admin actions, newest first, a page at a time."""
    if since is not None and since.tzinfo is None:
        invalid("since", "must carry a time zone offset, e.g. 2026-12-01T00:00:00Z")
    size = page_size(limit, options)
    rows, more = await audit.list_admin_actions(
        conn,
        principal.tenant_id,
        limit=size,
        action=None if action is None else action.value,
        since=since,
        after=_audit_after(cursor),
        max_bytes=AUDIT_PAGE_BYTES,
    )
    items = [AuditEntryRead(**row) for row in rows]
    next_cursor = None
    if more:
        last = items[-1]
        next_cursor = encode_cursor([last.at.isoformat(), str(last.audit_id)])
    return AuditPage(items=items, next_cursor=next_cursor)
