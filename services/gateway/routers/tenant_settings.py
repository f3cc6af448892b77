"""Per-tenant settings: the scoring model and the insight thresholds, versioned on every PUT."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common import audit
from libs.common.contracts.tenant_settings import DEFAULT_SCORING_MODEL, InsightThresholds, ScoringModel
from libs.common.web import Problem, field_errors
from services.gateway.adapters import tenant_settings
from services.gateway.auth import AdminCallerDep, AdminDep, Caller, ReaderDep, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep
from services.gateway.routers.admin_settings import change_settings
from services.gateway.schemas import InsightThresholdsRead, ScoringModelRead

router = APIRouter(tags=["settings"], responses=PROBLEM_RESPONSES)

_SCORING_EXAMPLE = DEFAULT_SCORING_MODEL.model_dump(mode="json", exclude={"version"})


#: Each versioned table's audit action, target, and the document in force before its first version.
_ACTIONS = {
    "scoring_models": (
        audit.AuditAction.SCORING_MODEL_CHANGED,
        "scoring_model",
        DEFAULT_SCORING_MODEL.model_dump(mode="json"),
    )
}


async def _append(
    conn: AsyncConnection, caller: Caller, table: str, floor: int, document: dict[str, Any]
) -> dict[str, Any]:
    """Save the next version and its audit row in one transaction."""
    tenant_id = caller.principal.tenant_id
    previous = await tenant_settings.latest(conn, tenant_id, table)
    version = await tenant_settings.next_version(conn, tenant_id, table, floor)
    action, target, default = _ACTIONS[table]
    try:
        saved = await tenant_settings.insert(
            conn, tenant_id, table, version, document, caller.principal.key_id
        )
        await audit.record_admin_action(
            conn,
            tenant_id,
            audit_actor(caller),
            action,
            target,
            # The built-in default was in force before the first version (docs/api.md: version 1).
            before=default if previous is None else {"version": previous["version"], **previous["document"]},
            after={**document, "version": version},
        )
        await conn.commit()
    except IntegrityError:
        await conn.rollback()
        raise Problem(
            409, "Conflict", "another version was saved at the same time; read it and retry"
        ) from None
    return saved


@router.get("/v1/scoring-model", response_model=ScoringModelRead)
async def get_scoring_model(principal: ReaderDep, conn: ConnDep) -> ScoringModelRead:
    """The tenant's latest scoring model, or the default (version 1)."""
    row = await tenant_settings.latest(conn, principal.tenant_id, "scoring_models")
    if row is None:
        return ScoringModelRead(
            version=DEFAULT_SCORING_MODEL.version,
            created_at=None,
            created_by="default",
            model=DEFAULT_SCORING_MODEL.model_dump(mode="json"),
        )
    return ScoringModelRead(
        version=row["version"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        model=row["document"],
    )


@router.put("/v1/scoring-model", response_model=ScoringModelRead)
async def put_scoring_model(
    caller: AdminCallerDep,
    conn: ConnDep,
    body: Annotated[dict[str, Any], Body(examples=[_SCORING_EXAMPLE])],
) -> ScoringModelRead:
    """Save a new scoring model version (any `version` sent is ignored); metrics rescoring follows."""
    principal = caller.principal
    # The default is version 1, so the first saved model is at least version 2.
    version = await tenant_settings.next_version(conn, principal.tenant_id, "scoring_models", 2)
    try:
        model = ScoringModel.model_validate({**body, "version": version})
    except ValidationError as exc:
        errors = field_errors(exc, ("body",))
        raise Problem(
            422,
            "Invalid request",
            "; ".join(f"body {e['field']}: {e['reason']}" for e in errors),
            errors=errors,
        ) from None
    saved = await _append(conn, caller, "scoring_models", version, model.model_dump(mode="json"))
    return ScoringModelRead(
        version=saved["version"],
        created_at=saved["created_at"],
        created_by=saved["created_by"],
        model=saved["document"],
    )


@router.get("/v1/insight-thresholds", response_model=InsightThresholdsRead)
async def get_insight_thresholds(principal: ReaderDep, conn: ConnDep) -> InsightThresholdsRead:
    """The tenant's latest insight thresholds, or the defaults (version 0)."""
    row = await tenant_settings.latest(conn, principal.tenant_id, "insight_thresholds")
    if row is None:
        return InsightThresholdsRead(
            version=0,
            created_at=None,
            created_by="default",
            thresholds=InsightThresholds().model_dump(mode="json"),
        )
    return InsightThresholdsRead(
        version=row["version"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        thresholds=row["document"],
    )


@router.put("/v1/insight-thresholds", response_model=InsightThresholdsRead)
async def put_insight_thresholds(
    request: Request, principal: AdminDep, conn: ConnDep, body: InsightThresholds
) -> InsightThresholdsRead:
    """Save a new thresholds version; fields left out take their defaults (as `PUT /v1/settings/insight_thresholds`)."""
    thresholds = body.model_dump(mode="json")
    await change_settings(
        request,
        principal,
        conn,
        rebuild=lambda current: {**current, "insight_thresholds": thresholds},
        version_thresholds=True,
    )
    saved = await tenant_settings.latest(conn, principal.tenant_id, "insight_thresholds")
    assert saved is not None
    return InsightThresholdsRead(
        version=saved["version"],
        created_at=saved["created_at"],
        created_by=saved["created_by"],
        thresholds=saved["document"],
    )
