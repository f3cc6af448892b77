"""Teams: the list, one team with its members, and a team's scores per period."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.gateway.adapters import directory, metrics
from services.gateway.adapters.calendar import tenant_today
from services.gateway.auth import ReaderDep
from services.gateway.deps import (
    PROBLEM_RESPONSES,
    ConnDep,
    CursorQuery,
    FromQuery,
    LimitQuery,
    OptionsDep,
    ToQuery,
    decode_cursor,
    encode_cursor,
    not_found,
    page_size,
)
from services.gateway.encoding import json_response, score_series
from services.gateway.routers._scores import latest_or_today, score_range
from services.gateway.schemas import Granularity, TeamPage, TeamRead, TeamScoresRead

router = APIRouter(prefix="/v1/teams", tags=["teams"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=TeamPage)
async def list_teams(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> TeamPage:
    """Teams ordered by id, a page at a time."""
    size = page_size(limit, options)
    after = decode_cursor(cursor, 1)[0] if cursor else None
    rows = await directory.list_teams(
        conn,
        principal.tenant_id,
        today=await tenant_today(conn, principal.tenant_id),
        after=after,
        limit=size + 1,
    )
    more = len(rows) > size
    items = [TeamRead(**row) for row in rows[:size]]
    return TeamPage(items=items, next_cursor=encode_cursor([items[-1].team_id]) if more else None)


# ``crm_id`` (``deps.CrmIdConvertor``): a CRM id may hold ``/`` (``005/ANA``, sent ``005%2FANA``).
# The scores route comes first, or ``<id>/scores`` would read as an id.
@router.get("/{team_id:crm_id}/scores", response_model=TeamScoresRead)
async def team_scores(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    team_id: str,
    granularity: Granularity = Granularity.DAY,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> Response:
    """A team's score and counters per period (team rollups), oldest first."""
    known, latest = await metrics.entity_latest_period(
        conn, principal.tenant_id, "team", team_id, granularity
    )
    if not known:
        not_found("team", team_id)
    latest_day = await latest_or_today(conn, principal.tenant_id, latest)
    first, last = score_range(from_, to, latest_day, granularity, options)
    rows = await metrics.period_scores(
        conn,
        principal.tenant_id,
        level="team",
        entity_id=team_id,
        granularity=granularity,
        first=first,
        last=last,
    )
    return json_response(score_series("team_id", team_id, granularity, rows))


@router.get("/{team_id:crm_id}", response_model=TeamRead)
async def get_team(principal: ReaderDep, conn: ConnDep, team_id: str) -> TeamRead:
    """One team with its current members."""
    row = await directory.get_team(
        conn, principal.tenant_id, team_id, today=await tenant_today(conn, principal.tenant_id)
    )
    if row is None:
        not_found("team", team_id)
    return TeamRead(**row)
