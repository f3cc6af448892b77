"""Per-tenant configuration shared by the gateway (which validates and versions it on PUT)
and metrics (which applies it): the scoring model and the insight thresholds.

These are contracts, not rules: the rules that use them live in the metrics domain.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: A rep's own baseline looks back over this many periods.
TRAILING_BASELINE_PERIODS = 8


class ScoredActivity(StrEnum):
    """An activity kind and outcome that carries a weight, and the counter that counts it."""

    CALL_DIALLED = "call.dialled"
    CALL_CONNECTED = "call.connected"
    CALL_CONVERSATION = "call.conversation"
    EMAIL_SENT = "email.sent"
    EMAIL_RECEIVED = "email.received"
    MEETING_BOOKED = "meeting.booked"
    MEETING_HELD = "meeting.held"
    MEETING_CANCELLED = "meeting.cancelled"
    MEETING_NO_SHOW = "meeting.no_show"


Weight = Annotated[float, Field(ge=0.0, le=1_000.0, allow_inf_nan=False)]


class RecencyDecay(BaseModel):
    """Halve a day's weight every ``half_life_days``; days ``window_days`` or more old weigh nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: int = Field(ge=1, le=3_660)
    half_life_days: float = Field(gt=0.0, le=3_660.0, allow_inf_nan=False)


class ScoringModel(BaseModel):
    """A tenant's versioned scoring weights. A new version means rescoring, never a silent change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    #: Missing activities weigh nothing.
    activity_weights: dict[ScoredActivity, Weight] = Field(default_factory=dict)
    #: Added per inbound email with an external participant, on top of ``email.received``.
    buyer_response_bonus: Weight = 0.0
    #: Added per held meeting with an external attendee, on top of ``meeting.held``.
    external_meeting_bonus: Weight = 0.0
    decay: RecencyDecay | None = None


DEFAULT_SCORING_MODEL = ScoringModel(
    version=1,
    activity_weights={
        ScoredActivity.CALL_DIALLED: 1.0,
        ScoredActivity.CALL_CONNECTED: 2.0,
        ScoredActivity.CALL_CONVERSATION: 3.0,
        ScoredActivity.EMAIL_SENT: 1.0,
        ScoredActivity.EMAIL_RECEIVED: 0.5,
        ScoredActivity.MEETING_BOOKED: 5.0,
        ScoredActivity.MEETING_HELD: 3.0,
        ScoredActivity.MEETING_CANCELLED: 0.0,
        ScoredActivity.MEETING_NO_SHOW: 0.0,
    },
    buyer_response_bonus=2.0,
    external_meeting_bonus=5.0,
)


class InsightThresholds(BaseModel):
    """A tenant's insight thresholds; the defaults suit a team of SDRs reviewed weekly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: At risk when the score is below this share of the team median...
    at_risk_share_of_team_median: float = Field(default=0.5, gt=0.0, le=1.0)
    #: ...in each of this many consecutive periods (the evaluated one and those before it).
    at_risk_consecutive_periods: int = Field(default=2, ge=1, le=12)
    #: Or at risk when the score is more than this fraction below the rep's own baseline.
    at_risk_drop_against_baseline: float = Field(default=0.3, gt=0.0, lt=1.0)
    #: Or at risk when the activity count is below this share of the rep's own baseline count.
    at_risk_low_volume_share: float = Field(default=0.5, gt=0.0, lt=1.0)
    #: A baseline needs at least this many of the trailing 8 periods with data.
    min_baseline_periods: int = Field(default=4, ge=1, le=TRAILING_BASELINE_PERIODS)
    #: Team comparisons (median, bright spots) need at least this many reps with data.
    min_team_size: int = Field(default=3, ge=2, le=1_000)
    #: An open deal without any counted activity for this many days is stale.
    stale_after_days: int = Field(default=14, ge=1, le=365)
    #: An open deal whose engaged external contacts number 1..this is single-threaded...
    single_threaded_max_contacts: int = Field(default=1, ge=1, le=10)
    #: ...once it is at least this old (every deal starts with one contact).
    single_threaded_min_deal_age_days: int = Field(default=14, ge=0, le=365)
    #: An open deal without an inbound buyer email for this many days has gone quiet.
    no_buyer_reply_days: int = Field(default=21, ge=1, le=365)
    bright_spot_top_n: int = Field(default=3, ge=1, le=50)
    #: A bright spot's value is strictly above the team median and at least this many times it.
    bright_spot_min_ratio_to_median: float = Field(default=1.5, ge=1.0, le=100.0)
    #: A bright spot's value is at least this (minimum data: one lucky meeting is not a pattern).
    bright_spot_min_value: int = Field(default=2, ge=1, le=100_000)
    #: At risk when, in the week in progress, a rep is below this share of the goal due so far.
    goal_at_risk_pace: float = Field(default=0.6, gt=0.0, le=1.0)
