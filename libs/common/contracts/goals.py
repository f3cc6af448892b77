"""Activity goals: per-rep targets a tenant sets per period and metric.

The gateway validates and stores them (``activity_goals``); the metrics service measures
attainment against them. The rules that resolve and measure goals live in the metrics domain.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from libs.common.contracts.fields import ExternalId

#: What a goal may target: the score or a rollup counter.
GoalMetric = Literal[
    "score",
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
]


class GoalScope(StrEnum):
    """Who a goal applies to; the most specific one wins: rep, then team (nearest up the tree), then tenant."""

    REP = "rep"
    TEAM = "team"
    TENANT = "tenant"


class GoalPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


class ActivityGoal(BaseModel):
    """A target every rep in scope should reach each period: "60 dials a week"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: GoalScope
    #: The rep or team id; absent for a tenant-wide goal.
    subject_id: ExternalId | None = None
    period: GoalPeriod
    metric: GoalMetric
    target: float = Field(gt=0.0, le=1_000_000.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _subject_matches_scope(self) -> ActivityGoal:
        if (self.scope is GoalScope.TENANT) != (self.subject_id is None):
            raise ValueError("subject_id is required for a rep or team goal and forbidden for a tenant goal")
        return self


class GoalAttainment(BaseModel):
    """How far a rep is along one goal in one period, as of the start of a day."""

    model_config = ConfigDict(frozen=True)

    target: float
    actual: float
    #: actual / target: 0.35 is 35 % of the goal.
    attainment: float
    #: The part of the target due by the start of today (working days, Monday to Friday).
    expected_by_now: float
    #: actual / expected_by_now: 1.0 is on pace; null before the first working day has passed.
    pace: float | None
    #: Working days left in the period, today included; 0 once it is over.
    days_left: int
    complete: bool
