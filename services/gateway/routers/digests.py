"""Digests: what a manager needs to read once a week."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.adapters import digests, directory
from services.gateway.adapters.calendar import tenant_today
from services.gateway.auth import ReaderDep
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, not_found
from services.gateway.schemas import WeeklyDigestRead

router = APIRouter(prefix="/v1/digests", tags=["digests"], responses=PROBLEM_RESPONSES)


@router.get("/weekly", response_model=WeeklyDigestRead)
async def weekly_digest(
    principal: ReaderDep,
    conn: ConnDep,
    manager_id: Annotated[str, Query(description="The manager (a rep id); their reps, direct and indirect")],
    week: Annotated[
        date | None,
        Query(description="Any day of a complete week (default: the tenant's last complete week)"),
    ] = None,
) -> WeeklyDigestRead:
    """The manager's digest of one week, as the metrics service computed it once the week was over."""
    if not await directory.rep_exists(conn, principal.tenant_id, manager_id):
        not_found("manager", manager_id)
    day = week or await tenant_today(conn, principal.tenant_id) - timedelta(days=7)
    monday = day - timedelta(days=day.weekday())
    digest = await digests.weekly_digest(conn, principal.tenant_id, manager_id, monday)
    if digest is None:
        not_found("digest of the week of", f"{monday.isoformat()} for manager {manager_id}")
    return WeeklyDigestRead(**digest)
