"""The leaderboard: reps ranked by a metric over one period."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.fields import SafeDate
from services.gateway import encoding
from services.gateway.adapters import directory, metrics
from services.gateway.auth import ReaderDep
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, LimitQuery, OptionsDep, not_found, page_size
from services.gateway.schemas import Granularity, LeaderboardMetric, LeaderboardRead

router = APIRouter(prefix="/v1/leaderboard", tags=["leaderboard"], responses=PROBLEM_RESPONSES)

TeamQuery = Annotated[str | None, Query(description="Only reps on this team during the period")]
PeriodQuery = Annotated[Granularity, Query(description="The period granularity")]
DateQuery = Annotated[
    SafeDate | None, Query(description="Any day inside the period (default: the latest period with data)")
]
MetricQuery = Annotated[LeaderboardMetric, Query(description="`score` or a counter")]


async def leaderboard_payload(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    team_id: str | None,
    period: Granularity,
    day: date | None,
    metric: LeaderboardMetric,
    limit: int,
) -> dict[str, Any]:
    """The leaderboard as plain values laid out like ``LeaderboardRead``."""
    if team_id is not None and not await directory.team_exists(conn, tenant_id, team_id):
        not_found("team", team_id)
    period_start, entries = await metrics.leaderboard(
        conn, tenant_id, granularity=period, day=day, metric=metric, team_id=team_id, limit=limit
    )
    return encoding.leaderboard(period, period_start, metric, team_id, entries)


async def read_leaderboard(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    team_id: str | None,
    period: Granularity,
    day: date | None,
    metric: LeaderboardMetric,
    limit: int,
) -> LeaderboardRead:
    """The leaderboard as the live stream serves it."""
    payload = await leaderboard_payload(
        conn, tenant_id, team_id=team_id, period=period, day=day, metric=metric, limit=limit
    )
    return LeaderboardRead.model_validate(payload)


@router.get("", response_model=LeaderboardRead)
async def leaderboard(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    team_id: TeamQuery = None,
    period: PeriodQuery = Granularity.WEEK,
    date: DateQuery = None,
    metric: MetricQuery = LeaderboardMetric.SCORE,
    limit: LimitQuery = None,
) -> Response:
    """Reps ranked by ``metric`` (ties share a rank) in the period containing ``date``."""
    payload = await leaderboard_payload(
        conn,
        principal.tenant_id,
        team_id=team_id,
        period=period,
        day=date,
        metric=metric,
        limit=page_size(limit, options),
    )
    return encoding.json_response(payload)
