"""Where a rep stands: percentile within the team, and change against the rep's own past."""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# A rep is compared with the mean of TRAILING_BASELINE_PERIODS periods immediately before the current one.
from libs.common.contracts.tenant_settings import TRAILING_BASELINE_PERIODS

__all__ = [
    "DEFAULT_MIN_BASELINE_PERIODS",
    "TRAILING_BASELINE_PERIODS",
    "Baseline",
    "change_against",
    "median",
    "percentile_ranks",
    "trailing_baseline",
]

DEFAULT_MIN_BASELINE_PERIODS = 4


def percentile_ranks(scores: Mapping[str, float]) -> dict[str, float | None]:
    """Each rep's percentile (0 = lowest, 100 = highest) among the reps of one team and period.

    Percentile = 100 * (reps strictly below + half of the *other* reps tied with it) / (n - 1),
    i.e. the mean rank of a tie group, so tied reps share one value and a team where
    everybody ties puts everybody at 50. A rep alone has nobody to be compared with: None.
    """
    count = len(scores)
    if count < 2:
        return dict.fromkeys(scores)
    ordered = sorted(scores.values())
    ranks: dict[str, float | None] = {}
    for rep_id, score in scores.items():
        below = bisect_left(ordered, score)
        tied_others = bisect_right(ordered, score) - below - 1
        ranks[rep_id] = 100.0 * (below + tied_others / 2) / (count - 1)
    return ranks


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True)
class Baseline:
    """The mean of the periods with data among the trailing ones, when there are enough of them."""

    mean: float | None
    periods_with_data: int


def trailing_baseline(
    history: Sequence[float | None], min_periods: int = DEFAULT_MIN_BASELINE_PERIODS
) -> Baseline:
    """``history`` holds the trailing periods oldest first; None marks a period without data.

    Only the last ``TRAILING_BASELINE_PERIODS`` entries are used. A period without data
    (no rollup row: the rep was not on the team, or not yet hired) is left out of the mean
    rather than counted as zero, so absence is never mistaken for a slump.
    """
    with_data = [value for value in history[-TRAILING_BASELINE_PERIODS:] if value is not None]
    if len(with_data) < max(min_periods, 1):
        return Baseline(None, len(with_data))
    return Baseline(sum(with_data) / len(with_data), len(with_data))


def change_against(current: float, baseline: Baseline) -> float | None:
    """Relative change, -0.25 for 25 % below the baseline; None without a usable (non-zero) baseline."""
    if baseline.mean is None or baseline.mean == 0:
        return None
    return (current - baseline.mean) / baseline.mean
