"""Activity goals: per-rep targets per period and metric (rep, role, team or tenant-wide)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from libs.common.contracts.goals import ActivityGoal
from services.gateway.adapters import goals
from services.gateway.auth import AdminCallerDep, ReaderDep, audit_actor
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, invalid, not_found
from services.gateway.schemas import GoalList, GoalRead

router = APIRouter(prefix="/v1/goals", tags=["goals"], responses=PROBLEM_RESPONSES)

GoalId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="The tenant's name for the goal")]


@router.get("", response_model=GoalList)
async def list_goals(principal: ReaderDep, conn: ConnDep) -> GoalList:
    """The tenant's goals by id."""
    return GoalList(items=[GoalRead(**row) for row in await goals.list_goals(conn, principal.tenant_id)])


@router.put("/{goal_id}", response_model=GoalRead)
async def put_goal(caller: AdminCallerDep, conn: ConnDep, goal_id: GoalId, body: ActivityGoal) -> GoalRead:
    """Create or replace a goal; the metrics service measures it from its next refresh tick (seconds)."""
    principal = caller.principal
    refused = await goals.missing_subject(conn, principal.tenant_id, body) or await goals.over_limit(
        conn, principal.tenant_id, goal_id
    )
    if refused is not None:
        invalid(*refused, "body")
    saved = await goals.put_goal(conn, principal.tenant_id, goal_id, body, audit_actor(caller))
    await conn.commit()
    return GoalRead(**saved)


@router.delete("/{goal_id}", status_code=204)
async def delete_goal(caller: AdminCallerDep, conn: ConnDep, goal_id: GoalId) -> Response:
    """Remove a goal."""
    if not await goals.delete_goal(conn, caller.principal.tenant_id, goal_id, audit_actor(caller)):
        not_found("goal", goal_id)
    await conn.commit()
    return Response(status_code=204)
