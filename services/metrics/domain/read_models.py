"""Per-period rep statistics for the read models: score, standing in the team, change against self.

Pure functions over plain rows: the refresher loads rollups and memberships, these rules
decide what each ``rep_period_stats`` row says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.metrics.domain.baselines import (
    TRAILING_BASELINE_PERIODS,
    change_against,
    percentile_ranks,
    trailing_baseline,
)
from services.metrics.domain.periods import Period


@dataclass(frozen=True, slots=True)
class Membership:
    """A rep on a team from ``valid_from`` (inclusive) to ``valid_to`` (exclusive, open if None)."""

    rep_id: str
    team_id: str
    valid_from: date
    valid_to: date | None


class TeamDirectory:
    """Answers "which team was this rep on, on that day", the latest start winning overlaps."""

    def __init__(self, memberships: Iterable[Membership]) -> None:
        self._by_rep: dict[str, list[Membership]] = defaultdict(list)
        for membership in memberships:
            self._by_rep[membership.rep_id].append(membership)

    def team_on(self, rep_id: str, day: date) -> str | None:
        current = [
            m
            for m in self._by_rep.get(rep_id, ())
            if m.valid_from <= day and (m.valid_to is None or day < m.valid_to)
        ]
        if not current:
            return None
        return max(current, key=lambda m: (m.valid_from, m.team_id)).team_id

    def team_at_end_of(self, rep_id: str, period: Period) -> str | None:
        """The rep's team on the last day of ``period``: where the rep ended the period."""
        return self.team_on(rep_id, period.end - timedelta(days=1))


@dataclass(frozen=True, slots=True)
class RepPeriodStat:
    rep_id: str
    team_id: str | None
    period_start: date
    score: float
    #: Percentile among the team's reps with data in the period; None without a team or peers.
    team_percentile: float | None
    baseline_score: float | None
    baseline_periods: int
    change_vs_baseline: float | None


def rep_period_stats(
    scores: Mapping[str, Mapping[date, float]],
    periods: Sequence[Period],
    reported: int,
    teams: TeamDirectory,
    min_baseline_periods: int,
) -> list[RepPeriodStat]:
    """Stats for the last ``reported`` of ``periods`` (oldest first, one grain, contiguous).

    ``scores`` maps rep -> period start -> score, holding only periods where the rep has
    data; ``periods`` should start ``TRAILING_BASELINE_PERIODS`` before the first reported
    one so every reported period sees its full baseline window.
    """
    index = {period.start: position for position, period in enumerate(periods)}
    stats: list[RepPeriodStat] = []
    for period in periods[len(periods) - reported :]:
        position = index[period.start]
        present = {
            rep: by_period[period.start] for rep, by_period in scores.items() if period.start in by_period
        }
        team_of = {rep: teams.team_at_end_of(rep, period) for rep in present}
        by_team: dict[str, dict[str, float]] = defaultdict(dict)
        for rep, score in present.items():
            team = team_of[rep]
            if team is not None:
                by_team[team][rep] = score
        percentiles: dict[str, float | None] = {}
        for members in by_team.values():
            percentiles.update(percentile_ranks(members))
        trailing = periods[max(0, position - TRAILING_BASELINE_PERIODS) : position]
        for rep in sorted(present):
            history = [scores[rep].get(past.start) for past in trailing]
            baseline = trailing_baseline(history, min_baseline_periods)
            stats.append(
                RepPeriodStat(
                    rep_id=rep,
                    team_id=team_of[rep],
                    period_start=period.start,
                    score=present[rep],
                    team_percentile=percentiles.get(rep),
                    baseline_score=baseline.mean,
                    baseline_periods=baseline.periods_with_data,
                    change_vs_baseline=change_against(present[rep], baseline),
                )
            )
    return stats
