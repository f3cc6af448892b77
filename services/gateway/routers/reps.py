"""Reps: the list, one rep, and a rep's scores per period."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

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
from services.gateway.schemas import Granularity, RepPage, RepRead, RepScoresRead

router = APIRouter(prefix="/v1/reps", tags=["reps"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=RepPage)
async def list_reps(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    team_id: Annotated[str | None, Query(description="Only current members of this team")] = None,
    manager_id: Annotated[
        str | None,
        Query(description="Only reps this manager manages, directly or through other managers"),
    ] = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> RepPage:
    """Reps ordered by id, a page at a time."""
    size = page_size(limit, options)
    after = decode_cursor(cursor, 1)[0] if cursor else None
    if team_id is not None and not await directory.team_exists(conn, principal.tenant_id, team_id):
        not_found("team", team_id)
    if manager_id is not None and not await directory.rep_exists(conn, principal.tenant_id, manager_id):
        not_found("manager", manager_id)
    rows = await directory.list_reps(
        conn,
        principal.tenant_id,
        today=await tenant_today(conn, principal.tenant_id),
        team_id=team_id,
        manager_id=manager_id,
        after=after,
        limit=size + 1,
    )
    more = len(rows) > size
    items = [RepRead(**row) for row in rows[:size]]
    return RepPage(items=items, next_cursor=encode_cursor([items[-1].rep_id]) if more else None)


# ``crm_id`` (``deps.CrmIdConvertor``): a CRM id may hold ``/`` (``005/ANA``, sent ``005%2FANA``).
# The scores route comes first, or ``<id>/scores`` would read as an id.
@router.get("/{rep_id:crm_id}/scores", response_model=RepScoresRead)
async def rep_scores(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    rep_id: str,
    granularity: Granularity = Granularity.DAY,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> Response:
    """A rep's score, counters, team percentile and change against baseline per period, oldest first.

    Periods whose start falls in ``[from, to]``; without ``to`` the range ends at the latest period with data.
    """
    known, latest = await metrics.entity_latest_period(conn, principal.tenant_id, "rep", rep_id, granularity)
    if not known:
        not_found("rep", rep_id)
    latest_day = await latest_or_today(conn, principal.tenant_id, latest)
    first, last = score_range(from_, to, latest_day, granularity, options)
    rows = await metrics.period_scores(
        conn,
        principal.tenant_id,
        level="rep",
        entity_id=rep_id,
        granularity=granularity,
        first=first,
        last=last,
    )
    return json_response(score_series("rep_id", rep_id, granularity, rows))


@router.get("/{rep_id:crm_id}", response_model=RepRead)
async def get_rep(principal: ReaderDep, conn: ConnDep, rep_id: str) -> RepRead:
    """One rep with the teams it belongs to today."""
    row = await directory.get_rep(
        conn, principal.tenant_id, rep_id, today=await tenant_today(conn, principal.tenant_id)
    )
    if row is None:
        not_found("rep", rep_id)
    return RepRead(**row)
