"""The funnel: dials to deals won for a rep or a team over a date range."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from libs.common.contracts.fields import SafeDate
from services.gateway.adapters import metrics
from services.gateway.adapters.calendar import tenant_calendar
from services.gateway.auth import ReaderDep
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep, OptionsDep, check_range, invalid, not_found
from services.gateway.domain.funnel import effort_ratios, funnel_steps
from services.gateway.schemas import FunnelRead, FunnelStepRead, Granularity, LeadingIndicatorsRead

router = APIRouter(prefix="/v1/funnel", tags=["funnel"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=FunnelRead)
async def funnel(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    from_: Annotated[SafeDate, Query(alias="from", description="First day, inclusive")],
    to: Annotated[SafeDate, Query(description="Last day, inclusive")],
    rep_id: str | None = None,
    team_id: str | None = None,
) -> FunnelRead:
    """Counts per step with the ratio to the previous step, the effort ratios and the leading indicators."""
    if (rep_id is None) == (team_id is None):
        invalid("rep_id", "give exactly one of rep_id and team_id")
    check_range(from_, to, options)
    level, entity = ("rep", rep_id) if rep_id is not None else ("team", team_id)
    assert entity is not None
    # A rep (or team) the CRM deleted keeps its history, as on the score routes.
    known, _ = await metrics.entity_latest_period(conn, principal.tenant_id, level, entity, Granularity.DAY)
    if not known:
        not_found(level, entity)
    zone = (await tenant_calendar(conn, principal.tenant_id)).zone.key
    counts = await metrics.funnel_counts(
        conn, principal.tenant_id, level=level, entity_id=entity, first=from_, last=to, time_zone=zone
    )
    signals = await metrics.leading_indicators(
        conn, principal.tenant_id, level=level, entity_id=entity, first=from_, last=to
    )
    steps, dials_per_deal = funnel_steps(counts)
    return FunnelRead(
        rep_id=rep_id,
        team_id=team_id,
        from_=from_,
        to=to,
        steps=[FunnelStepRead(**s) for s in steps],
        dials_per_deal_won=dials_per_deal,
        ratios=effort_ratios(counts),
        leading_indicators=LeadingIndicatorsRead(
            activities=counts["activities"],
            emails_sent=counts["emails_sent"],
            buyer_replies=counts["buyer_replies"],
            opportunities_created=counts["opportunities_created"],
            **signals,
        ),
    )
