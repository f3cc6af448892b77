"""Deals: a deal's activity timeline with its engagement summary."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.adapters import activities
from services.gateway.auth import ReaderDep
from services.gateway.deps import (
    PROBLEM_RESPONSES,
    ConnDep,
    CursorQuery,
    LimitQuery,
    OptionsDep,
    not_found,
    page_size,
)
from services.gateway.routers._pages import activity_after, activity_page
from services.gateway.schemas import DealRead, DealSummaryRead, DealTimelinePage

router = APIRouter(prefix="/v1/deals", tags=["deals"], responses=PROBLEM_RESPONSES)


@router.get("/{deal_id}/activities", response_model=DealTimelinePage)
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
