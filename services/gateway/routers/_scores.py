"""The period-range rule shared by rep and team scores."""

from __future__ import annotations

from datetime import date, timedelta

from services.gateway.deps import check_range, invalid
from services.gateway.domain.periods import MAX_PERIOD_DAYS, periods_spanned
from services.gateway.schemas import Granularity
from services.gateway.settings import GatewayOptions


def score_range(
    first: date | None,
    last: date | None,
    latest: date | None,
    granularity: Granularity,
    options: GatewayOptions,
) -> tuple[date, date]:
    """``[from, to]`` on period starts, bounded by granularity; missing ends default to the ``latest``
    data and the widest allowed span.

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
        last = first + span if first is not None else latest or date.today()
    if first is None:
        first = last - span
    return first, last
