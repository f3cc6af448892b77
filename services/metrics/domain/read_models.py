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
    """Answers "which team was this rep on, on that day", the latest start winning overlaps.

    Reps listed in ``inactive`` (deactivated, deleted or merged in the CRM) are on no roster,
    though their history keeps its teams.
    """

    def __init__(self, memberships: Iterable[Membership], inactive: Iterable[str] = ()) -> None:
        self._by_rep: dict[str, list[Membership]] = defaultdict(list)
        for membership in memberships:
            self._by_rep[membership.rep_id].append(membership)
        self._inactive = frozenset(inactive)

    def team_on(self, rep_id: str, day: date) -> str | None:
        current = [
            m
            for m in self._by_rep.get(rep_id, ())
            if m.valid_from <= day and (m.valid_to is None or day < m.valid_to)
        ]
        if not current:
            return None
        return max(current, key=lambda m: (m.valid_from, m.team_id)).team_id

    def owners_team_on(self, rep_id: str, day: date) -> str | None:
        """The team whose list a deal owned by ``rep_id`` is on, on ``day``: hers that day; for an
        owner who left (inactive) and is on none that day, the last team she was on, so the deals
        she leaves stay where her manager looks for them whether or not the CRM ended her membership."""
        team = self.team_on(rep_id, day)
        if team is not None or rep_id not in self._inactive:
            return team
        before = [m for m in self._by_rep.get(rep_id, ()) if m.valid_from <= day]
        if not before:
            return None
        return max(before, key=lambda m: (m.valid_to or date.max, m.valid_from, m.team_id)).team_id

    def team_at_end_of(self, rep_id: str, period: Period) -> str | None:
        """The rep's team on the last day of ``period``: where the rep ended the period."""
        return self.team_on(rep_id, period.end - timedelta(days=1))

    def roster_at_end_of(self, period: Period) -> dict[str, str]:
        """Active reps and their team on the last day of ``period``: who a leader expects to see."""
        roster = {}
        for rep_id in self._by_rep:
            team = self.team_at_end_of(rep_id, period)
            if team is not None and rep_id not in self._inactive:
                roster[rep_id] = team
        return roster

    def member_throughout(self, rep_id: str, period: Period) -> bool:
        """Active and on some team every day of ``period``: silence in it means no work, not no job."""
        if rep_id in self._inactive:
            return False
        day = period.start
        while day < period.end:
            if self.team_on(rep_id, day) is None:
                return False
            day += timedelta(days=1)
        return True


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
    #: Counted activities in the period (0 for a rostered rep who did nothing).
    activities: int = 0
    #: Fewer than ``min_baseline_periods`` trailing periods with data: too new to judge.
    insufficient_data: bool = False
    #: The recency-decayed score as of today (current period only, with a model's ``decay``).
    recency_score: float | None = None


def rep_period_stats(
    scores: Mapping[str, Mapping[date, float]],
    periods: Sequence[Period],
    reported: int,
    teams: TeamDirectory,
    min_baseline_periods: int,
    activities: Mapping[str, Mapping[date, int]] | None = None,
) -> list[RepPeriodStat]:
    """Stats for the last ``reported`` of ``periods`` (oldest first, one grain, contiguous).

    ``scores`` maps rep -> period start -> score, holding only periods where the rep has
    data; ``periods`` should start ``TRAILING_BASELINE_PERIODS`` before the first reported
    one so every reported period sees its full baseline window. Every rep on the roster at
    the end of a period gets a row, a zero one when silent, and counts in the team's
    percentiles: silence is a figure. A silent period stays out of the baseline.
    """
    index = {period.start: position for position, period in enumerate(periods)}
    stats: list[RepPeriodStat] = []
    for period in periods[len(periods) - reported :]:
        position = index[period.start]
        present = {
            rep: by_period[period.start] for rep, by_period in scores.items() if period.start in by_period
        }
        roster = teams.roster_at_end_of(period)
        figures = {**dict.fromkeys(roster, 0.0), **present}
        team_of = {rep: roster.get(rep) or teams.team_at_end_of(rep, period) for rep in figures}
        by_team: dict[str, dict[str, float]] = defaultdict(dict)
        for rep, score in figures.items():
            team = team_of[rep]
            if team is not None:
                by_team[team][rep] = score
        percentiles: dict[str, float | None] = {}
        for members in by_team.values():
            percentiles.update(percentile_ranks(members))
        trailing = periods[max(0, position - TRAILING_BASELINE_PERIODS) : position]
        for rep in sorted(figures):
            history = [scores.get(rep, {}).get(past.start) for past in trailing]
            baseline = trailing_baseline(history, min_baseline_periods)
            stats.append(
                RepPeriodStat(
                    rep_id=rep,
                    team_id=team_of[rep],
                    period_start=period.start,
                    score=figures[rep],
                    team_percentile=percentiles.get(rep),
                    baseline_score=baseline.mean,
                    baseline_periods=baseline.periods_with_data,
                    change_vs_baseline=change_against(figures[rep], baseline),
                    activities=(activities or {}).get(rep, {}).get(period.start, 0),
                    insufficient_data=baseline.mean is None,
                )
            )
    return stats
