"""Deals: the list (by owner or id, with names) and a deal's activity timeline with its engagement summary."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.adapters import activities, crm
from services.gateway.auth import ReaderDep
from services.gateway.deps import (
    PROBLEM_RESPONSES,
    ConnDep,
    CursorQuery,
    LimitQuery,
    OptionsDep,
    decode_cursor,
    encode_cursor,
    invalid,
    not_found,
    page_size,
)
from services.gateway.routers._pages import activity_after, activity_page
from services.gateway.schemas import DealPage, DealRead, DealSummaryRead, DealTimelinePage

router = APIRouter(prefix="/v1/deals", tags=["deals"], responses=PROBLEM_RESPONSES)

#: At most this many ids in one ``ids`` filter.
MAX_IDS = 100


@router.get("", response_model=DealPage)
async def list_deals(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    account_id: Annotated[str | None, Query(description="Only this account's deals")] = None,
    owner_rep_id: Annotated[str | None, Query(description="Only deals this rep owns")] = None,
    is_closed: Annotated[bool | None, Query(description="Only open (false) or closed (true) deals")] = None,
    ids: Annotated[
        str | None,
        Query(description=f"Only these deals: comma-separated ids, at most {MAX_IDS} (e.g. to name them)"),
    ] = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> DealPage:
    """Deals (not deleted or merged away) ordered by id, a page at a time."""
    size = page_size(limit, options)
    wanted = [i for i in ids.split(",") if i] if ids is not None else None
    if wanted is not None and len(wanted) > MAX_IDS:
        invalid("ids", f"at most {MAX_IDS} ids")
    after = decode_cursor(cursor, 1)[0] if cursor else None
    rows = await crm.list_deals(
        conn,
        principal.tenant_id,
        account_id=account_id,
        owner_rep_id=owner_rep_id,
        is_closed=is_closed,
        deal_ids=wanted,
        after=after,
        limit=size + 1,
    )
    items = [DealRead(**row) for row in rows[:size]]
    return DealPage(items=items, next_cursor=encode_cursor([items[-1].deal_id]) if len(rows) > size else None)


# ``crm_id`` (``deps.CrmIdConvertor``): a CRM id may hold ``/`` (``006/ABC``, sent ``006%2FABC``).
@router.get("/{deal_id:crm_id}/activities", response_model=DealTimelinePage)
async def deal_timeline(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    deal_id: str,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> DealTimelinePage:
    """The deal, its engagement summary and the activities that engage it, newest first (docs/metrics.md)."""
    deal = await activities.get_deal(conn, principal.tenant_id, deal_id)
    if deal is None:
        not_found("deal", deal_id)
    size = page_size(limit, options)
    rows = await activities.deal_activities(
        conn, principal.tenant_id, deal_id, after=activity_after(cursor), limit=size + 1
    )
    items, next_cursor = activity_page(rows, size)
    summary = await activities.deal_summary(conn, principal.tenant_id, deal_id)
    return DealTimelinePage(
        deal=DealRead(**deal), summary=DealSummaryRead(**summary), items=items, next_cursor=next_cursor
    )
