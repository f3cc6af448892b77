from __future__ import annotations

import pytest

from services.metrics.domain.baselines import (
    Baseline,
    change_against,
    median,
    percentile_ranks,
    trailing_baseline,
)


@pytest.mark.parametrize(
    ("scores", "percentiles"),
    [
        pytest.param({}, {}, id="empty team"),
        pytest.param({"ana": 12.0}, {"ana": None}, id="singleton has no peers"),
        pytest.param({"ana": 1.0, "bo": 2.0}, {"ana": 0.0, "bo": 100.0}, id="pair"),
        pytest.param(
            {"ana": 10.0, "bo": 20.0, "cy": 20.0, "di": 30.0},
            {"ana": 0.0, "bo": 50.0, "cy": 50.0, "di": 100.0},
            id="ties share the mean rank",
        ),
        pytest.param(
            {"ana": 5.0, "bo": 5.0, "cy": 5.0}, {"ana": 50.0, "bo": 50.0, "cy": 50.0}, id="all tied"
        ),
        pytest.param(
            {"a": 50.0, "b": 10.0, "c": 40.0, "d": 20.0, "e": 30.0},
            {"a": 100.0, "b": 0.0, "c": 75.0, "d": 25.0, "e": 50.0},
            id="five distinct",
        ),
        pytest.param(
            {"a": 0.0, "b": 0.0, "c": 9.0},
            {"a": 25.0, "b": 25.0, "c": 100.0},
            id="tie at the bottom",
        ),
    ],
)
def test_percentile_ranks(scores: dict[str, float], percentiles: dict[str, float | None]) -> None:
    assert percentile_ranks(scores) == percentiles


@pytest.mark.parametrize(
    ("history", "min_periods", "baseline"),
    [
        pytest.param(
            [10.0, 20.0, None, 30.0, None, 40.0, 50.0, 60.0], 4, Baseline(35.0, 6), id="gaps left out"
        ),
        pytest.param(
            [None, None, None, None, None, 10.0, 20.0, 30.0], 4, Baseline(None, 3), id="too little data"
        ),
        pytest.param(
            [None, None, None, None, None, 10.0, 20.0, 30.0], 3, Baseline(20.0, 3), id="just enough"
        ),
        pytest.param([1000.0, 1000.0] + [8.0] * 8, 4, Baseline(8.0, 8), id="only the last 8 periods"),
        pytest.param([0.0, 0.0, 0.0, 0.0], 4, Baseline(0.0, 4), id="zeros are data"),
        pytest.param([], 1, Baseline(None, 0), id="no history"),
    ],
)
def test_trailing_baseline(history: list[float | None], min_periods: int, baseline: Baseline) -> None:
    assert trailing_baseline(history, min_periods) == baseline


@pytest.mark.parametrize(
    ("current", "baseline", "change"),
    [
        (7.0, Baseline(10.0, 8), -0.3),
        (15.0, Baseline(10.0, 8), 0.5),
        (10.0, Baseline(10.0, 4), 0.0),
        (5.0, Baseline(0.0, 8), None),
        (5.0, Baseline(None, 2), None),
    ],
)
def test_change_against_baseline(current: float, baseline: Baseline, change: float | None) -> None:
    assert change_against(current, baseline) == change


def test_median() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert median([]) is None
