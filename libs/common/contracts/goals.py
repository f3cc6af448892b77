"""Activity goals: per-rep targets a tenant sets per period and metric (for a rep, a role, a team or everybody).

The gateway validates and stores them (``activity_goals``); the metrics service measures
attainment against them. The rules that resolve and measure goals live in the metrics domain.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from libs.common.contracts.fields import ExternalId, RoleName

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


#: The smallest target a goal may set.
MIN_GOAL_TARGET = 0.001


class GoalScope(StrEnum):
    """Who a goal applies to; the most specific one wins: rep, then role (the rep's current
    role), then team (nearest up the tree), then tenant."""

    REP = "rep"
    ROLE = "role"
    TEAM = "team"
    TENANT = "tenant"


#: The scopes whose goal names a rep or a team in ``subject_id``.
_SUBJECT_SCOPES = {GoalScope.REP: "a rep", GoalScope.TEAM: "a team"}


class GoalPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


class ActivityGoal(BaseModel):
    """A target every rep in scope should reach each period: "60 dials a week"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: GoalScope
    #: The rep or team id of a rep or team goal; absent otherwise.
    subject_id: ExternalId | None = Field(default=None, validate_default=True)
    #: The role of a role goal ("SDR", as the CRM names it on reps); absent otherwise.
    role: RoleName | None = Field(default=None, validate_default=True)
    period: GoalPeriod
    metric: GoalMetric
    #: From a thousandth: a target of 5e-324 (> 0) made a rep's attainment and pace infinite,
    #: stored so and served as null.
    target: float = Field(ge=MIN_GOAL_TARGET, le=1_000_000.0, allow_inf_nan=False)

    # Field validators (not a model validator) so that the error names the field to fix.
    @field_validator("subject_id")
    @classmethod
    def _subject_matches_scope(cls, subject_id: str | None, info: ValidationInfo) -> str | None:
        scope = info.data.get("scope")
        if scope is None:  # the scope itself is wrong: that is the error to report
            return subject_id
        if scope in _SUBJECT_SCOPES and subject_id is None:
            raise PydanticCustomError(
                "goal_subject", "subject_id is required for a {scope} goal: {what} id", _ctx(scope)
            )
        if scope not in _SUBJECT_SCOPES and subject_id is not None:
            raise PydanticCustomError(
                "goal_subject", "subject_id is forbidden for a {scope} goal", _ctx(scope)
            )
        return subject_id

    @field_validator("role")
    @classmethod
    def _role_matches_scope(cls, role: str | None, info: ValidationInfo) -> str | None:
        scope = info.data.get("scope")
        if scope is GoalScope.ROLE and role is None:
            raise PydanticCustomError("goal_role", "role is required for a role goal")
        if scope is not None and scope is not GoalScope.ROLE and role is not None:
            raise PydanticCustomError("goal_role", "role is forbidden for a {scope} goal", _ctx(scope))
        return role


def _ctx(scope: GoalScope) -> dict[str, str]:
    return {"scope": scope.value, "what": _SUBJECT_SCOPES.get(scope, "")}


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
