"""Insights: at-risk reps, stale deals and bright spots, as computed by the metrics service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters import directory, insights
from services.gateway.auth import ReaderDep
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, LimitQuery, OptionsDep, not_found, page_size
from services.gateway.schemas import InsightKind, InsightList, InsightRead

router = APIRouter(prefix="/v1/insights", tags=["insights"], responses=PROBLEM_RESPONSES)

TeamQuery = Annotated[str | None, Query(description="Only insights about this team or a team below it")]
RepQuery = Annotated[
    str | None, Query(description="Only insights about this rep (stale deals: the ones she owns)")
]


async def _list(
    conn: AsyncConnection,
    tenant_id: str,
    kind: InsightKind,
    team_id: str | None,
    limit: int,
    rep_id: str | None,
) -> InsightList:
    if rep_id is not None and not await directory.rep_exists(conn, tenant_id, rep_id):
        not_found("rep", rep_id)
    if team_id is not None and not await directory.team_exists(conn, tenant_id, team_id):
        not_found("team", team_id)
    rows = await insights.list_insights(conn, tenant_id, kind, team_id=team_id, limit=limit, rep_id=rep_id)
    return InsightList(kind=kind, items=[InsightRead(**row) for row in rows])


@router.get("/at-risk-reps", response_model=InsightList)
async def at_risk_reps(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    team_id: TeamQuery = None,
    limit: LimitQuery = None,
    rep_id: RepQuery = None,
) -> InsightList:
    """Reps below their team's median or well below their own baseline."""
    return await _list(
        conn, principal.tenant_id, InsightKind.AT_RISK_REP, team_id, page_size(limit, options), rep_id
    )


@router.get("/stale-deals", response_model=InsightList)
async def stale_deals(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    team_id: TeamQuery = None,
    limit: LimitQuery = None,
    rep_id: RepQuery = None,
) -> InsightList:
    """Open deals gone quiet, single-threaded or without buyer replies."""
    return await _list(
        conn, principal.tenant_id, InsightKind.STALE_DEAL, team_id, page_size(limit, options), rep_id
    )


@router.get("/bright-spots", response_model=InsightList)
async def bright_spots(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    team_id: TeamQuery = None,
    limit: LimitQuery = None,
    rep_id: RepQuery = None,
) -> InsightList:
    """The top reps of each team in the latest period."""
    return await _list(
        conn, principal.tenant_id, InsightKind.BRIGHT_SPOT, team_id, page_size(limit, options), rep_id
    )
