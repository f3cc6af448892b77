"""A tenant's settings (admin scope): read, replace or patch them whole or by group, and their history.

Every change is validated against ``TenantSettings`` (422 names each field and the reason, and
nothing is saved), stored as a new version with who and when, and announced on
``settings-changed`` so every service drops its cached copy within seconds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common import audit
from libs.common.contracts.tenant_settings import (
    DEFAULT_TENANT_SETTINGS,
    FIELD_GROUPS,
    InvalidTenantSettings,
    read_tenant_settings,
)
from libs.common.jobs import REATTRIBUTE, Job, get_job, queue_job
from libs.common.kafka.publisher import BrokerUnavailable
from libs.common.kafka.settings_events import settings_changed_message
from libs.common.tenancy import Principal
from libs.common.tenant_settings_store import (
    SettingsChange,
    SettingsRefused,
    change_tenant_settings,
    load_raw_tenant_settings,
    settings_history,
    settings_history_page,
)
from libs.common.web import Problem
from services.gateway.auth import AdminCallerDep, AdminDep, audit_actor
from services.gateway.deps import (
    PROBLEM_RESPONSES,
    ConnDep,
    LimitQuery,
    OptionsDep,
    invalid,
    not_found,
    page_size,
)
from services.gateway.schemas import (
    ReattributionCreate,
    SettingsGroup,
    SettingsGroupRead,
    SettingsJobRead,
    SettingsRead,
    SettingsVersionPage,
    SettingsVersionRead,
)

log = logging.getLogger(__name__)

#: A page of settings history stops before its documents pass this (as stored), one version at
#: least: a document may be megabytes and every change stores it whole.
SETTINGS_HISTORY_PAGE_BYTES = 4 * 1024 * 1024

router = APIRouter(prefix="/v1/settings", tags=["settings"], responses=PROBLEM_RESPONSES)

_EXAMPLE = DEFAULT_TENANT_SETTINGS.model_dump(mode="json", exclude={"scoring_model_version"})
_PATCH_EXAMPLE = {"fiscal_year_start_month": 2, "privacy": {"excluded_domains": ["lawfirm.example"]}}
Document = Annotated[dict[str, Any], Body(examples=[_EXAMPLE])]
Patch = Annotated[
    dict[str, Any],
    Body(
        examples=[_PATCH_EXAMPLE],
        description="An RFC 7396 merge patch: objects merge, `null` resets a setting to its default",
    ),
]


async def _current(conn: AsyncConnection, tenant_id: str) -> SettingsRead:
    document = await load_raw_tenant_settings(conn, tenant_id) or {}
    errors: list[dict[str, Any]] = []
    try:
        document = read_tenant_settings(tenant_id, document).model_dump(mode="json")
    except InvalidTenantSettings as exc:
        errors = [
            {"in": "stored settings", "field": name, "reason": reason}
            for name, reason in zip(exc.settings, exc.reasons, strict=True)
        ]
    latest = await settings_history(conn, tenant_id, 1)
    if not latest:
        return SettingsRead(
            version=0, changed_at=None, changed_by="default", settings=document, errors=errors
        )
    return SettingsRead(
        version=latest[0].version,
        changed_at=latest[0].changed_at,
        changed_by=latest[0].changed_by,
        settings=document,
        errors=errors,
    )


async def change_settings(
    request: Request,
    principal: Principal,
    conn: AsyncConnection,
    *,
    document: dict[str, Any] | None = None,
    patch: dict[str, Any] | None = None,
    rebuild: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    version_thresholds: bool = False,
) -> SettingsChange:
    """Validate, save (committed) and announce a change; 422 naming each invalid field."""
    try:
        change = await change_tenant_settings(
            conn,
            principal.tenant_id,
            principal.key_id,
            document=document,
            patch=patch,
            rebuild=rebuild,
            version_thresholds=version_thresholds,
            actor=audit_actor(request.state.caller),
        )
    except SettingsRefused as refused:
        await conn.rollback()
        raise Problem(
            422,
            "Invalid settings",
            "; ".join(f"body {e['field']}: {e['reason']}" for e in refused.errors),
            errors=refused.errors,
        ) from None
    if change is None:
        raise Problem(404, "Not found", f"no tenant {principal.tenant_id!r}")
    await conn.commit()
    if change.saved:
        await _announce(request, change)
    return change


async def _announce(request: Request, change: SettingsChange) -> None:
    message = settings_changed_message(
        change.event(), request.app.state.settings.kafka.topic_prefix, "spm/gateway"
    )
    try:
        await request.app.state.publisher.publish([message])
    except BrokerUnavailable:
        # Saved all the same: the services' caches expire within their TTL (30 s by default).
        log.warning("settings-changed not announced", extra={"tenant_id": change.tenant_id})


def _read(change: SettingsChange) -> SettingsRead:
    return SettingsRead(
        version=change.version,
        changed_at=change.changed_at,
        changed_by=change.changed_by,
        settings=change.settings.model_dump(mode="json"),
        jobs=[str(job.job_id) for job in change.jobs],
        warnings=list(change.warnings),
    )


def _group_read(group: SettingsGroup, change: SettingsRead) -> SettingsGroupRead:
    settings = change.settings
    value = (
        {name: settings.get(name) for name in FIELD_GROUPS[group.value]}
        if group.value in FIELD_GROUPS
        else settings.get(group.value)
    )
    return SettingsGroupRead(
        group=group,
        version=change.version,
        changed_at=change.changed_at,
        changed_by=change.changed_by,
        settings=value if isinstance(value, dict) else {},
        jobs=change.jobs,
        warnings=change.warnings,
    )


def _group_document(current: dict[str, Any], group: SettingsGroup, body: dict[str, Any]) -> dict[str, Any]:
    """The whole document with ``group`` replaced by ``body`` (what it leaves out takes its default)."""
    document = dict(current)
    if group.value in FIELD_GROUPS:
        for name in FIELD_GROUPS[group.value]:
            document.pop(name, None)
        document.update(body)
    else:
        document[group.value] = body
    return document


def _only_group_fields(group: SettingsGroup, body: dict[str, Any]) -> None:
    for name in body:
        if name not in FIELD_GROUPS[group.value]:
            invalid(name, f"is not a setting of the {group.value} group", "body")


@router.get("", response_model=SettingsRead)
async def get_settings(principal: AdminDep, conn: ConnDep) -> SettingsRead:
    """The tenant's settings with their version; `errors` names what is wrong with a hand-written document."""
    return await _current(conn, principal.tenant_id)


@router.put("", response_model=SettingsRead)
async def put_settings(request: Request, principal: AdminDep, conn: ConnDep, body: Document) -> SettingsRead:
    """Replace every setting (what the body leaves out takes its default); a new version."""
    return _read(await change_settings(request, principal, conn, document=body))


@router.patch("", response_model=SettingsRead)
async def patch_settings(request: Request, principal: AdminDep, conn: ConnDep, body: Patch) -> SettingsRead:
    """Change some settings (a JSON merge patch); a new version."""
    return _read(await change_settings(request, principal, conn, patch=body))


@router.get("/history", response_model=SettingsVersionPage)
async def get_settings_history(
    principal: AdminDep,
    conn: ConnDep,
    options: OptionsDep,
    limit: LimitQuery = None,
    cursor: Annotated[str | None, Query(description="The `next_cursor` of the previous page")] = None,
) -> SettingsVersionPage:
    """Every saved version, newest first: what changed, who changed it and when."""
    size = page_size(limit, options)
    before = None
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 9:
            invalid("cursor", "is not a cursor this API issued")
        before = int(cursor)
    versions, more = await settings_history_page(
        conn, principal.tenant_id, size, before, max_bytes=SETTINGS_HISTORY_PAGE_BYTES
    )
    items = [
        SettingsVersionRead(
            version=v.version,
            changed=list(v.changed),
            changed_by=v.changed_by,
            changed_at=v.changed_at,
            settings=v.settings,
        )
        for v in versions
    ]
    return SettingsVersionPage(items=items, next_cursor=str(items[-1].version) if more else None)


def _job_read(job: Job) -> SettingsJobRead:
    progress = round(job.done / job.total, 4) if job.total else None
    return SettingsJobRead(**job.model_dump(exclude={"tenant_id"}), progress=progress)


@router.get("/jobs/{job_id}", response_model=SettingsJobRead)
async def get_settings_job(principal: AdminDep, conn: ConnDep, job_id: uuid.UUID) -> SettingsJobRead:
    """A job a settings change started (a rollup rebuild) or a re-attribution, with its progress."""
    job = await get_job(conn, principal.tenant_id, job_id)
    if job is None:
        not_found("job", str(job_id))
    return _job_read(job)


@router.post("/reattribution", response_model=SettingsJobRead, status_code=202)
async def post_reattribution(
    caller: AdminCallerDep, conn: ConnDep, body: ReattributionCreate
) -> SettingsJobRead:
    """Re-attribute a slice of history under the current attribution policy and internal domains
    (new versions only), or with `dry_run` count what would move; attribution runs it."""
    if body.until is not None and body.until <= body.since:
        invalid("until", "must be after since", "body")
    parameters = {
        "since": body.since.isoformat(),
        "until": body.until and body.until.isoformat(),
        "dry_run": body.dry_run,
    }
    principal = caller.principal
    job_id = await queue_job(conn, principal.tenant_id, REATTRIBUTE, principal.key_id, parameters=parameters)
    if not body.dry_run:
        await audit.record_admin_action(
            conn,
            principal.tenant_id,
            audit_actor(caller),
            audit.AuditAction.ATTRIBUTION_REATTRIBUTED,
            f"job:{job_id}",
            after=parameters,
        )
    await conn.commit()
    job = await get_job(conn, principal.tenant_id, job_id)
    assert job is not None
    return _job_read(job)


@router.get("/{group}", response_model=SettingsGroupRead)
async def get_settings_group(principal: AdminDep, conn: ConnDep, group: SettingsGroup) -> SettingsGroupRead:
    """One group of settings."""
    return _group_read(group, await _current(conn, principal.tenant_id))


@router.put("/{group}", response_model=SettingsGroupRead)
async def put_settings_group(
    request: Request, principal: AdminDep, conn: ConnDep, group: SettingsGroup, body: dict[str, Any]
) -> SettingsGroupRead:
    """Replace one group (what the body leaves out takes its default); a new version."""
    if group.value in FIELD_GROUPS:
        _only_group_fields(group, body)
    change = await change_settings(
        request, principal, conn, rebuild=lambda current: _group_document(current, group, body)
    )
    return _group_read(group, _read(change))


@router.patch("/{group}", response_model=SettingsGroupRead)
async def patch_settings_group(
    request: Request, principal: AdminDep, conn: ConnDep, group: SettingsGroup, body: dict[str, Any]
) -> SettingsGroupRead:
    """Change some settings of one group (a JSON merge patch); a new version."""
    if group.value in FIELD_GROUPS:
        _only_group_fields(group, body)
        patch = body
    else:
        patch = {group.value: body}
    return _group_read(group, _read(await change_settings(request, principal, conn, patch=patch)))
