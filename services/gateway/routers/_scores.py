"""The period-range rule shared by rep and team scores."""

from __future__ import annotations

from datetime import date, timedelta

from services.gateway.deps import check_range
from services.gateway.settings import GatewayOptions


def score_range(
    first: date | None, last: date | None, latest: date | None, options: GatewayOptions
) -> tuple[date, date]:
    """``[from, to]`` on period starts; missing ends default to the ``latest`` data and the widest allowed span."""
    check_range(first, last, options)
    span = timedelta(days=options.max_range_days - 1)
    if last is None:
        last = first + span if first is not None else latest or date.today()
    if first is None:
        first = last - span
    return first, last
