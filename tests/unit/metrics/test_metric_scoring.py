from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.metrics.domain.definitions import Counter, MetricCounts
from services.metrics.domain.scoring import (
    DEFAULT_SCORING_MODEL,
    RecencyDecay,
    ScoredActivity,
    ScoringModel,
    decay_factor,
    decay_factors,
    decayed_score,
    score_of,
    weights_by_counter,
)

AS_OF = date(2026, 11, 24)
DIALS_ONLY = ScoringModel(version=1, activity_weights={ScoredActivity.CALL_DIALLED: 1.0})
WEEKLY_HALVING = RecencyDecay(window_days=14, half_life_days=7)


def test_default_weights_by_counter() -> None:
    assert weights_by_counter(DEFAULT_SCORING_MODEL) == {
        Counter.DIALS: 1.0,
        Counter.CONNECTS: 2.0,
        Counter.CONVERSATIONS: 3.0,
        Counter.TALK_SECONDS: 0.0,
        Counter.EMAILS_SENT: 1.0,
        Counter.EMAILS_RECEIVED: 0.5,
        Counter.BUYER_REPLIES: 2.0,
        Counter.MEETINGS_BOOKED: 5.0,
        Counter.MEETINGS_HELD: 8.0,
        Counter.MEETINGS_CANCELLED: 0.0,
        Counter.MEETINGS_NO_SHOW: 0.0,
        Counter.INTERNAL_MEETINGS_HELD: 3.0,
        Counter.DEALS_WON: 0.0,
    }


def test_score_of_is_the_weighted_sum_of_counters() -> None:
    counts = MetricCounts(
        dials=10,
        connects=4,
        conversations=2,
        talk_seconds=900,
        emails_sent=20,
        emails_received=6,
        buyer_replies=3,
        meetings_booked=2,
        meetings_held=1,
        meetings_cancelled=1,
        internal_meetings_held=2,
        deals_won=1,
    )

    # 10*1 + 4*2 + 2*3 + 20*1 + 6*0.5 + 3*2 + 2*5 + 1*(3+5) + 2*3 = 77
    assert score_of(counts, DEFAULT_SCORING_MODEL) == 77.0


def test_score_is_linear_so_day_scores_add_up_to_the_period_score() -> None:
    monday = MetricCounts(dials=7, connects=2, emails_sent=3, buyer_replies=1)
    tuesday = MetricCounts(dials=1, meetings_booked=1, meetings_held=1)

    assert score_of(monday + tuesday, DEFAULT_SCORING_MODEL) == score_of(
        monday, DEFAULT_SCORING_MODEL
    ) + score_of(tuesday, DEFAULT_SCORING_MODEL)


def test_bonuses_only_touch_buyer_replies_and_buyer_meetings() -> None:
    model = ScoringModel(version=3, buyer_response_bonus=1.5, external_meeting_bonus=4.0)

    weights = weights_by_counter(model)

    assert {counter: weight for counter, weight in weights.items() if weight} == {
        Counter.BUYER_REPLIES: 1.5,
        Counter.MEETINGS_HELD: 4.0,
    }


@pytest.mark.parametrize(
    ("age_days", "factor"),
    [(0, 1.0), (7, 0.5), (13, 0.5 ** (13 / 7)), (14, 0.0), (30, 0.0), (-1, 0.0)],
)
def test_decay_factor_halves_every_half_life_inside_the_window(age_days: int, factor: float) -> None:
    assert decay_factor(AS_OF - timedelta(days=age_days), AS_OF, WEEKLY_HALVING) == factor


@pytest.mark.parametrize(("age_days", "factor"), [(0, 1.0), (400, 1.0), (-1, 0.0)])
def test_without_decay_every_past_day_weighs_one(age_days: int, factor: float) -> None:
    assert decay_factor(AS_OF - timedelta(days=age_days), AS_OF, None) == factor


def test_decayed_score_with_and_without_decay() -> None:
    daily = {
        AS_OF: MetricCounts(dials=4),
        AS_OF - timedelta(days=7): MetricCounts(dials=4),
        AS_OF - timedelta(days=14): MetricCounts(dials=100),
        AS_OF + timedelta(days=1): MetricCounts(dials=1_000),
    }
    decaying = DIALS_ONLY.model_copy(update={"decay": WEEKLY_HALVING})

    assert decayed_score(daily, DIALS_ONLY, AS_OF) == 108.0
    assert decayed_score(daily, decaying, AS_OF) == 6.0


def test_decay_factors_cover_the_window() -> None:
    factors = decay_factors(AS_OF, RecencyDecay(window_days=3, half_life_days=1))

    assert factors == {AS_OF: 1.0, AS_OF - timedelta(days=1): 0.5, AS_OF - timedelta(days=2): 0.25}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"version": 0}, id="version below 1"),
        pytest.param({"version": 1, "activity_weights": {"call.dialled": -1.0}}, id="negative weight"),
        pytest.param({"version": 1, "activity_weights": {"call.dialled": float("nan")}}, id="nan weight"),
        pytest.param({"version": 1, "activity_weights": {"call.voicemail": 1.0}}, id="unknown activity"),
        pytest.param({"version": 1, "buyer_response_bonus": 1_001.0}, id="bonus too large"),
        pytest.param({"version": 1, "decay": {"window_days": 14, "half_life_days": 0}}, id="zero half-life"),
        pytest.param({"version": 1, "decay": {"window_days": 0, "half_life_days": 7}}, id="empty window"),
        pytest.param({"version": 1, "surprise": True}, id="unknown field"),
    ],
)
def test_invalid_models_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ScoringModel.model_validate(payload)


def test_model_round_trips_through_json() -> None:
    model = DEFAULT_SCORING_MODEL.model_copy(update={"version": 2, "decay": WEEKLY_HALVING})

    assert ScoringModel.model_validate_json(model.model_dump_json()) == model


def test_the_consumer_scores_each_version_as_score_of_does_to_the_last_bit() -> None:
    """``plan_batch`` adds the weighted counters of each version (``_counts_of``); its score is
    ``score_of`` of the version's counters, bit for bit, under weights whose sums depend on their
    order ((0.1 + 0.2) + 0.3 is not 0.1 + (0.2 + 0.3))."""
    import random
    from itertools import product

    from libs.common.contracts.activities import OUTCOMES_BY_KIND, ActivityKind, Direction
    from services.metrics.adapters.rollups import CONTRIBUTION_FIELDS
    from services.metrics.domain.definitions import MetricSettings, contribution_of
    from services.metrics.handlers import plan_batch

    from .events import attributed

    draw = random.Random(20)
    awkward = [0.1, 0.2, 0.3, 1 / 3, 0.7, 999.999, 1e-9, 0.0]
    models = [DEFAULT_SCORING_MODEL, ScoringModel(version=2)]
    for version in range(3, 23):
        weights = {activity: draw.choice(awkward) for activity in ScoredActivity}
        models.append(
            ScoringModel(
                version=version,
                activity_weights=weights,
                buyer_response_bonus=draw.choice(awkward),
                external_meeting_bonus=draw.choice(awkward),
            )
        )
    settings = MetricSettings()
    events = [
        attributed(
            kind=kind,
            direction=direction,
            outcome=outcome,
            duration_seconds=duration,
            external_participants=ext,
        )
        for kind in ActivityKind
        for direction, outcome, duration, ext in product(
            Direction, OUTCOMES_BY_KIND[kind], (0, 59, 60, 3_601), (0, 1)
        )
    ]
    order_sensitive = 0
    for model in models:
        for event in events:
            rows, _ = plan_batch([event], {}, settings, model)
            expected = score_of(contribution_of(event, settings), model)
            score = dict(zip(CONTRIBUTION_FIELDS, rows[0], strict=True))["score"]
            assert float(score).hex() == float(expected).hex(), (model, event.facts)
            terms = [
                w * a
                for c, a in contribution_of(event, settings).items()
                if (w := weights_by_counter(model)[c])
            ]
            order_sensitive += sum(terms) != sum(reversed(terms))
    assert order_sensitive > 0  # the weights above do make the order show
