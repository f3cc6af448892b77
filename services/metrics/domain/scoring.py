"""The activity score: a weighted sum of rollup counters, optionally decayed by recency.

The score is linear in the counters on purpose: a rollup cell's score is then
``sum(weight * column)``, which SQL computes over any period without re-reading activities,
and the score of a period is the sum of the scores of its days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta

from libs.common.contracts.tenant_settings import (
    DEFAULT_SCORING_MODEL,
    RecencyDecay,
    ScoredActivity,
    ScoringModel,
    Weight,
)
from services.metrics.domain.definitions import Counter, MetricCounts

__all__ = [
    "DEFAULT_SCORING_MODEL",
    "RecencyDecay",
    "ScoredActivity",
    "ScoringModel",
    "Weight",
    "decay_factor",
    "decay_factors",
    "decayed_score",
    "score_of",
    "weights_by_counter",
]


#: Which counters each weight applies to. A connected outbound call counts in dials and
#: connects, so it earns both weights: connect and conversation weights are increments.
COUNTERS_BY_SCORED_ACTIVITY: dict[ScoredActivity, tuple[Counter, ...]] = {
    ScoredActivity.CALL_DIALLED: (Counter.DIALS,),
    ScoredActivity.CALL_CONNECTED: (Counter.CONNECTS,),
    ScoredActivity.CALL_CONVERSATION: (Counter.CONVERSATIONS,),
    ScoredActivity.EMAIL_SENT: (Counter.EMAILS_SENT,),
    ScoredActivity.EMAIL_RECEIVED: (Counter.EMAILS_RECEIVED,),
    ScoredActivity.MEETING_BOOKED: (Counter.MEETINGS_BOOKED,),
    ScoredActivity.MEETING_HELD: (Counter.MEETINGS_HELD, Counter.INTERNAL_MEETINGS_HELD),
    ScoredActivity.MEETING_CANCELLED: (Counter.MEETINGS_CANCELLED,),
    ScoredActivity.MEETING_NO_SHOW: (Counter.MEETINGS_NO_SHOW,),
}


def weights_by_counter(model: ScoringModel) -> dict[Counter, float]:
    """One weight per rollup column: ``score = sum(weight * column)``. Unlisted columns weigh 0."""
    weights = dict.fromkeys(Counter, 0.0)
    for activity, weight in model.activity_weights.items():
        for counter in COUNTERS_BY_SCORED_ACTIVITY[activity]:
            weights[counter] += weight
    weights[Counter.BUYER_REPLIES] += model.buyer_response_bonus
    weights[Counter.MEETINGS_HELD] += model.external_meeting_bonus
    return weights


def score_of(counts: MetricCounts, model: ScoringModel) -> float:
    """The undecayed score of one rollup cell (or a sum of cells)."""
    weights = weights_by_counter(model)
    return sum(weights[counter] * amount for counter, amount in counts.items())


def decay_factor(day: date, as_of: date, decay: RecencyDecay | None) -> float:
    """How much a day bucket weighs as of ``as_of``: 1 today, 0.5 one half-life ago.

    Days after ``as_of`` weigh nothing, so a score as of a past date never sees later work.
    """
    age = (as_of - day).days
    if age < 0:
        return 0.0
    if decay is None:
        return 1.0
    if age >= decay.window_days:
        return 0.0
    return math.pow(0.5, age / decay.half_life_days)


def decay_factors(as_of: date, decay: RecencyDecay) -> dict[date, float]:
    """The factor of every day in the window, newest first: join it to day rollups in SQL."""
    days = (as_of - timedelta(days=age) for age in range(decay.window_days))
    return {day: decay_factor(day, as_of, decay) for day in days}


def decayed_score(daily_counts: Mapping[date, MetricCounts], model: ScoringModel, as_of: date) -> float:
    """Sum of each day's score times its decay factor (factor 1 up to ``as_of`` without decay)."""
    return sum(
        score_of(counts, model) * decay_factor(day, as_of, model.decay)
        for day, counts in daily_counts.items()
    )
