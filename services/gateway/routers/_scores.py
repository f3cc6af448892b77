"""The period-range rule shared by rep and team scores."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters import metrics
from services.gateway.deps import check_range
from services.gateway.schemas import Granularity
from services.gateway.settings import GatewayOptions


async def score_range(
    conn: AsyncConnection,
    tenant_id: str,
    level: str,
    entity_id: str,
    granularity: Granularity,
    first: date | None,
    last: date | None,
    options: GatewayOptions,
) -> tuple[date, date]:
    """``[from, to]`` on period starts; missing ends default to the latest data and the widest allowed span."""
    check_range(first, last, options)
    span = timedelta(days=options.max_range_days - 1)
    if last is None:
        if first is not None:
            last = first + span
        else:
            last = await metrics.latest_period(conn, tenant_id, level, entity_id, granularity) or date.today()
    if first is None:
        first = last - span
    return first, last
