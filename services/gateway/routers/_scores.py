"""The period-range rule shared by rep and team scores."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters.calendar import tenant_today
from services.gateway.deps import check_range, invalid
from services.gateway.domain.periods import MAX_PERIOD_DAYS, periods_spanned
from services.gateway.schemas import Granularity
from services.gateway.settings import GatewayOptions


def score_range(
    first: date | None,
    last: date | None,
    latest: date,
    granularity: Granularity,
    options: GatewayOptions,
) -> tuple[date, date]:
    """``[from, to]`` on period starts, bounded by granularity; missing ends default to the ``latest``
    data (the tenant's today when there is none: ``latest_or_today``) and the widest allowed span.

    Days are bounded by ``GATEWAY_MAX_RANGE_DAYS``; weeks, months and quarters by
    ``GATEWAY_MAX_RANGE_PERIODS`` periods (eight quarters are two years, past any day bound).
    """
    if granularity is Granularity.DAY:
        check_range(first, last, options)
        span = timedelta(days=options.max_range_days - 1)
    else:
        if first is not None and last is not None:
            if last < first:
                invalid("to", "must not be before from")
            if periods_spanned(first, last, granularity) > options.max_range_periods:
                invalid(
                    "from",
                    f"a {granularity.value} range may span at most {options.max_range_periods} periods",
                )
        # Default span: the day bound, or fewer whole periods when that is shorter.
        span = timedelta(
            days=min(options.max_range_days, options.max_range_periods * MAX_PERIOD_DAYS[granularity]) - 1
        )
    if last is None:
        last = first + span if first is not None else latest
    if first is None:
        first = last - span
    return first, last


async def latest_or_today(conn: AsyncConnection, tenant_id: str, latest: date | None) -> date:
    """The latest period with data, else today in the tenant's time zone (not the server's: near
    midnight they differ by a day)."""
    return latest if latest is not None else await tenant_today(conn, tenant_id)
