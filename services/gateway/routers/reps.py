"""Reps: the list, one rep, and a rep's scores per period."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import text

from libs.common.web import Problem
from services.gateway.auth import ReaderDep

router = APIRouter(prefix="/v1/reps", tags=["reps"])

COUNTERS = (
    "activities",
    "dials",
    "connects",
    "conversations",
    "talk_seconds",
    "emails_sent",
    "emails_received",
    "buyer_replies",
    "meetings_booked",
    "meetings_held",
    "meetings_cancelled",
    "meetings_no_show",
    "internal_meetings_held",
)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


class PeriodScoreRead(BaseModel):
    period_start: date
    score: float
    counts: dict[str, int]


class RepScoresRead(BaseModel):
    rep_id: str
    granularity: Granularity
    periods: list[PeriodScoreRead]


@router.get("/{rep_id}/scores", response_model=RepScoresRead)
async def rep_scores(
    request: Request,
    principal: ReaderDep,
    rep_id: str,
    granularity: Granularity = Granularity.DAY,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
) -> Any:
    """A rep's score and counters per period, oldest first, for periods that have activity."""
    if from_ is not None and to is not None and to < from_:
        raise Problem(
            422,
            "Invalid range",
            "`to` is before `from`",
            errors=[{"in": "query", "field": "to", "reason": "must not be before from"}],
        )
    async with request.app.state.engine.connect() as conn:
        rep = await conn.execute(
            text("SELECT 1 FROM ref_reps WHERE tenant_id = :t AND rep_id = :r AND NOT deleted"),
            {"t": principal.tenant_id, "r": rep_id},
        )
        if rep.first() is None:
            raise Problem(404, "Not found", f"no rep {rep_id!r}")
        rows = await conn.execute(
            text(
                f"SELECT period_start, score, {', '.join(COUNTERS)} FROM metric_rollups "
                "WHERE tenant_id = :t AND level = 'rep' AND entity_id = :r AND granularity = :g "
                "AND (CAST(:from AS date) IS NULL OR period_start >= :from) "
                "AND (CAST(:to AS date) IS NULL OR period_start <= :to) ORDER BY period_start"
            ),
            {"t": principal.tenant_id, "r": rep_id, "g": granularity.value, "from": from_, "to": to},
        )
        periods = [
            PeriodScoreRead(
                period_start=row.period_start,
                score=round(float(row.score), 4),
                counts={c: int(getattr(row, c)) for c in COUNTERS},
            )
            for row in rows
        ]
    return RepScoresRead(rep_id=rep_id, granularity=granularity, periods=periods)
