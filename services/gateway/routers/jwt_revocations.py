"""Signing JWT subjects out (admin scope): list, revoke, restore.

A JWT from the identity provider is checked by its signature alone; revoking its subject makes
every replica refuse that subject's tokens issued until now within
``GATEWAY_CREDENTIAL_RECHECK_SECONDS`` (this replica at once), and ends the dashboard sessions
opened with them. Tokens issued later are accepted.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from libs.common import audit
from libs.common.contracts.fields import check_line
from libs.common.jwt_revocations import (
    JwtRevocationCache,
    list_jwt_revocations,
    restore_jwt_subject,
    revoke_jwt_subject,
)
from services.gateway.auth import AdminCallerDep, AdminDep, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, invalid, not_found
from services.gateway.schemas import JwtRevocationCreate, JwtRevocationList, JwtRevocationRead

router = APIRouter(prefix="/v1/jwt-revocations", tags=["jwt revocations"], responses=PROBLEM_RESPONSES)

SubjectPath = Annotated[str, Path(description="The JWT's `sub` claim, URL-encoded", max_length=512)]


def _subject(subject: str) -> str:
    try:
        check_line(subject)
    except ValueError as exc:
        invalid("subject", str(exc), "path")
    if not subject.strip():
        invalid("subject", "must not be blank", "path")
    return subject


def _forget(request: Request, tenant_id: str, subject: str) -> None:
    revocations: JwtRevocationCache = request.app.state.jwt_revocations
    revocations.forget(tenant_id, subject)


@router.get("", response_model=JwtRevocationList)
async def get_jwt_revocations(principal: AdminDep, conn: ConnDep) -> JwtRevocationList:
    """Every signed-out subject of the tenant, most recent first."""
    items = await list_jwt_revocations(conn, principal.tenant_id)
    return JwtRevocationList(items=[JwtRevocationRead(**r.model_dump()) for r in items])


@router.put("/{subject}", response_model=JwtRevocationRead)
async def put_jwt_revocation(
    request: Request, caller: AdminCallerDep, conn: ConnDep, subject: SubjectPath, body: JwtRevocationCreate
) -> JwtRevocationRead:
    """Refuse the subject's tokens issued until now and end its dashboard sessions (again: moves the moment on)."""
    tenant_id = caller.principal.tenant_id
    revoked = await revoke_jwt_subject(
        conn, tenant_id, _subject(subject), audit_actor(caller).name, body.reason
    )
    await audit.record_admin_action(
        conn,
        tenant_id,
        audit_actor(caller),
        audit.AuditAction.JWT_SUBJECT_REVOKED,
        f"jwt_subject:{subject}",
        after={"subject": subject, "reason": body.reason, "sessions_revoked": revoked.sessions_revoked},
    )
    await conn.commit()
    _forget(request, tenant_id, subject)
    return JwtRevocationRead(**revoked.model_dump())


@router.delete("/{subject}", status_code=204, response_class=Response)
async def delete_jwt_revocation(
    request: Request, caller: AdminCallerDep, conn: ConnDep, subject: SubjectPath
) -> Response:
    """Accept the subject's earlier tokens again (a revocation made by mistake); ended sessions stay ended."""
    tenant_id = caller.principal.tenant_id
    restored = await restore_jwt_subject(conn, tenant_id, _subject(subject))
    if restored is None:
        not_found("JWT revocation", subject)
    await audit.record_admin_action(
        conn,
        tenant_id,
        audit_actor(caller),
        audit.AuditAction.JWT_SUBJECT_RESTORED,
        f"jwt_subject:{subject}",
        before={"subject": subject, "not_before": restored.not_before.isoformat(), "reason": restored.reason},
    )
    await conn.commit()
    _forget(request, tenant_id, subject)
    return Response(status_code=204)
