"""Periods: the tenant's calendar around a day, so a client can step through periods."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.adapters.calendar import tenant_calendar
from services.gateway.auth import ReaderDep
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep
from services.gateway.domain.periods import CalendarPeriod, next_period, period_of, previous_period
from services.gateway.schemas import CalendarPeriodRead, Granularity, PeriodsRead

router = APIRouter(prefix="/v1/periods", tags=["periods"], responses=PROBLEM_RESPONSES)

GranularityQuery = Annotated[Granularity, Query(description="The period granularity")]
DayQuery = Annotated[
    date | None, Query(description="Any day inside the period (default: the last complete period)")
]


def _read(period: CalendarPeriod, today: datetime) -> CalendarPeriodRead:
    day = today.date()
    return CalendarPeriodRead(
        start=period.start,
        end=period.end,
        label=period.label,
        in_progress=period.start <= day < period.end,
    )


@router.get("", response_model=PeriodsRead)
async def periods(
    principal: ReaderDep,
    conn: ConnDep,
    granularity: GranularityQuery = Granularity.WEEK,
    date: DayQuery = None,
) -> PeriodsRead:
    """The period containing ``date`` in the tenant's calendar, the ones before and after it, the
    period in progress and the last complete one; ``next`` is null past the period in progress."""
    calendar = await tenant_calendar(conn, principal.tenant_id)
    zone = calendar.zone
    now = datetime.now(UTC).astimezone(zone)
    fiscal = calendar.fiscal_year_start_month
    current = period_of(now.date(), granularity, fiscal)
    last_complete = previous_period(current, fiscal)
    chosen = last_complete if date is None else period_of(date, granularity, fiscal)
    following = next_period(chosen, fiscal)
    return PeriodsRead(
        granularity=granularity,
        time_zone=zone.key,
        today=now.date(),
        period=_read(chosen, now),
        previous=_read(previous_period(chosen, fiscal), now),
        next=_read(following, now) if following.start <= now.date() else None,
        current=_read(current, now),
        last_complete=_read(last_complete, now),
    )
