"""Activities: the filtered list, one activity with its attribution history, and manual overrides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common import audit
from libs.common.contracts.activities import ActivityKind
from libs.common.contracts.attribution import AttributionStatus
from libs.common.contracts.commands import AttributionOverriddenV1
from libs.common.kafka.publisher import BrokerUnavailable
from libs.common.web import Problem
from services.gateway.adapters import activities, directory
from services.gateway.adapters.calendar import tenant_calendar
from services.gateway.adapters.publisher import override_message
from services.gateway.auth import AdminCallerDep, ReaderDep, audit_actor
from services.gateway.deps import (
    PROBLEM_RESPONSES,
    ConnDep,
    CursorQuery,
    FromQuery,
    LimitQuery,
    OptionsDep,
    ToQuery,
    check_range,
    invalid,
    not_found,
    page_size,
)
from services.gateway.encoding import activity_page, json_response
from services.gateway.routers._pages import activity_after, activity_rows_page
from services.gateway.schemas import (
    ActivityPage,
    ActivityRead,
    AttributionOverrideCreate,
    AttributionOverrideRead,
)

router = APIRouter(prefix="/v1/activities", tags=["activities"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=ActivityPage)
async def list_activities(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    rep_id: str | None = None,
    team_id: str | None = None,
    deal_id: str | None = None,
    account_id: str | None = None,
    kind: Annotated[ActivityKind | None, Query(description="`call`, `email` or `meeting`")] = None,
    status: Annotated[
        AttributionStatus | None, Query(description="Attribution status, e.g. `attributed`")
    ] = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> Response:
    """Activities with their attribution, newest first, a page at a time. ``from`` and ``to``
    are days of the tenant's calendar, as the score routes count them."""
    check_range(from_, to, options)
    size = page_size(limit, options)
    # Local midnights (fold 0, as metrics bounds its periods), only when a day bounds the list.
    zone = (await tenant_calendar(conn, principal.tenant_id)).zone if (from_ or to) else UTC
    where = activities.ActivityFilter(
        rep_id=rep_id,
        team_id=team_id,
        deal_id=deal_id,
        account_id=account_id,
        kind=kind,
        status=status,
        first=datetime.combine(from_, time(0), tzinfo=zone) if from_ else None,
        end=datetime.combine(to + timedelta(days=1), time(0), tzinfo=zone) if to else None,
    )
    rows = await activities.list_activities(
        conn, principal.tenant_id, where, after=activity_after(cursor), limit=size + 1
    )
    items, next_cursor = activity_rows_page(rows, size)
    return json_response(activity_page(items, next_cursor))


@router.get("/{activity_id}", response_model=ActivityRead)
async def get_activity(principal: ReaderDep, conn: ConnDep, activity_id: uuid.UUID) -> ActivityRead:
    """The activity, its current attribution with the explanation, and every earlier version."""
    found = await activities.get_activity(conn, principal.tenant_id, activity_id)
    if found is None:
        not_found("activity", str(activity_id))
    return ActivityRead.model_validate(found)


async def _check_override_targets(
    conn: AsyncConnection, tenant_id: str, body: AttributionOverrideCreate
) -> None:
    if body.deal_id is None and body.rep_id is None and body.account_id is None:
        invalid("deal_id", "give at least one of deal_id, rep_id and account_id", "body")
    if body.deal_id is not None and not await activities.deal_exists(conn, tenant_id, body.deal_id):
        invalid("deal_id", f"no deal {body.deal_id!r}", "body")
    if body.rep_id is not None and not await directory.rep_exists(conn, tenant_id, body.rep_id):
        invalid("rep_id", f"no rep {body.rep_id!r}", "body")
    if body.account_id is not None and not await directory.account_exists(conn, tenant_id, body.account_id):
        invalid("account_id", f"no account {body.account_id!r}", "body")


@router.put(
    "/{activity_id}/attribution",
    response_model=AttributionOverrideRead,
    status_code=202,
    responses={503: {"description": "The broker did not acknowledge; retry after `Retry-After` seconds"}},
)
async def override_attribution(
    request: Request,
    caller: AdminCallerDep,
    conn: ConnDep,
    activity_id: uuid.UUID,
    body: AttributionOverrideCreate,
) -> AttributionOverrideRead:
    """Pin an activity's deal, rep or account; attribution applies it as a sticky new version."""
    principal = caller.principal
    if not await activities.activity_exists(conn, principal.tenant_id, activity_id):
        not_found("activity", str(activity_id))
    await _check_override_targets(conn, principal.tenant_id, body)
    command = AttributionOverriddenV1(
        tenant_id=principal.tenant_id,
        activity_id=activity_id,
        deal_id=body.deal_id,
        rep_id=body.rep_id,
        account_id=body.account_id,
        set_by=principal.key_id,
        set_at=datetime.now(UTC),
        reason=body.reason,
    )
    try:
        await request.app.state.publisher.publish(
            [override_message(command, str(uuid.uuid4()), request.app.state.settings.kafka.topic_prefix)]
        )
    except BrokerUnavailable:
        raise Problem(
            503,
            "Broker unavailable",
            "the override was not recorded; retry later",
            headers={"Retry-After": "2"},
        ) from None
    await audit.record_admin_action(
        conn,
        principal.tenant_id,
        audit_actor(caller),
        audit.AuditAction.ATTRIBUTION_OVERRIDDEN,
        f"activity:{activity_id}",
        before=await activities.current_attribution(conn, principal.tenant_id, activity_id),
        after=command.model_dump(mode="json", include={"deal_id", "rep_id", "account_id", "reason"}),
    )
    await conn.commit()
    return AttributionOverrideRead(
        activity_id=activity_id,
        deal_id=command.deal_id,
        rep_id=command.rep_id,
        account_id=command.account_id,
        set_by=command.set_by,
        set_at=command.set_at,
        reason=command.reason,
    )
