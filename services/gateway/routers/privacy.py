"""Data protection (admin scope): erasure of a person (request it, then follow the job's progress
and counts), and the export of what the tenant holds about one (GDPR Art. 15)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from libs.common import audit
from libs.common.contracts.tenant_settings import InvalidTenantSettings
from libs.common.erasures import (
    IdentityKind,
    erasure_key,
    get_erasure,
    identity_hash,
    identity_hashes,
    normalise_identity,
    request_erasure,
)
from libs.common.web import Problem
from services.gateway.auth import AdminCallerDep, AdminDep, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, CursorQuery, invalid, not_found
from services.gateway.routers._pages import activity_after
from services.gateway.schemas import ErasureCreate, ErasureRead, SubjectExport
from services.gateway.subject_access import DEFAULT_LIMIT, MAX_LIMIT, export_subject

router = APIRouter(prefix="/v1/privacy", tags=["privacy"], responses=PROBLEM_RESPONSES)


def _read(row: dict[str, Any]) -> ErasureRead:
    total = row["total"]
    return ErasureRead(
        **{k: v for k, v in row.items() if k != "counts"},
        counts=dict(row["counts"] or {}),
        progress=round(row["done"] / total, 4) if total else None,
    )


def _identity(body: ErasureCreate) -> tuple[IdentityKind, str]:
    if (body.email is None) == (body.phone is None):
        invalid("email", "give exactly one of email and phone", "body")
    kind, value, field = (
        (IdentityKind.EMAIL, body.email, "email")
        if body.email is not None
        else (IdentityKind.PHONE, body.phone, "phone")
    )
    try:
        return kind, normalise_identity(kind, value or "")
    except ValueError as exc:
        invalid(field, str(exc), "body")


@router.post(
    "/erasures", response_model=ErasureRead, status_code=202, responses={200: {"model": ErasureRead}}
)
async def request_person_erasure(
    request: Request, response: Response, caller: AdminCallerDep, conn: ConnDep, body: ErasureCreate
) -> ErasureRead:
    """Erase a person from the tenant (202, a job); the same person again answers that job (200)."""
    tenant_id = caller.principal.tenant_id
    kind, identity = _identity(body)
    key = erasure_key(request.app.state.settings.runtime.secret_key.get_secret_value())
    hashed = identity_hash(key, kind, identity)
    # An address's mailbox goes on the list with it: pia+crm@'s mail from pia@ is hers.
    also = identity_hashes(key, [identity]) if kind is IdentityKind.EMAIL else ()
    row, created = await request_erasure(conn, tenant_id, kind, hashed, caller.principal.key_id, also)
    await audit.record_admin_action(
        conn,
        tenant_id,
        audit_actor(caller),
        audit.AuditAction.ERASURE_REQUESTED,
        f"erasure:{row['erasure_id']}",
        after={
            "identity_kind": kind.value,
            "identity_hash": hashed,
            "state": row["state"],
            "created": created,
        },
    )
    await conn.commit()
    if not created:
        response.status_code = 200
    found = await get_erasure(conn, tenant_id, row["erasure_id"])
    assert found is not None
    return _read(found)


@router.get("/erasures/{erasure_id}", response_model=ErasureRead)
async def get_person_erasure(principal: AdminDep, conn: ConnDep, erasure_id: uuid.UUID) -> ErasureRead:
    """An erasure job: its state, progress (activities examined of the total) and counts."""
    found = await get_erasure(conn, principal.tenant_id, erasure_id)
    if found is None:
        not_found("erasure", str(erasure_id))
    return _read(found)


@router.get(
    "/subjects/export",
    response_model=SubjectExport,
    responses={409: {"description": "The tenant's stored settings are invalid; `errors` names them"}},
)
async def export_person(
    request: Request,
    response: Response,
    caller: AdminCallerDep,
    conn: ConnDep,
    identity: Annotated[str, Query(max_length=320, description="The person's email address or phone number")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Activities per page")] = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> SubjectExport:
    """Everything the tenant holds naming one person (GDPR Art. 15), audited ``privacy.exported``."""
    after = activity_after(cursor)
    # Every read and the audit row in one snapshot, committed together: a GET's connection runs
    # in AUTOCOMMIT (``deps._connection``), so leave it for a REPEATABLE READ transaction.
    await conn.commit()
    await conn.execution_options(isolation_level="REPEATABLE READ")
    try:
        async with conn.begin():
            found = await export_subject(
                conn,
                caller.principal.tenant_id,
                identity,
                secret_key=request.app.state.settings.runtime.secret_key.get_secret_value(),
                actor=audit_actor(caller),
                limit=limit,
                after=after,
            )
    except InvalidTenantSettings as exc:
        raise Problem(
            409,
            "Conflict",
            str(exc),
            errors=[
                {"in": "stored settings", "field": name, "reason": reason}
                for name, reason in zip(exc.settings, exc.reasons, strict=True)
            ],
        ) from None
    except ValueError as exc:
        invalid("identity", str(exc))
    # Never kept by a browser or a proxy (``ETagMiddleware`` leaves a ``no-store`` answer alone).
    response.headers["Cache-Control"] = "no-store"
    return found
