"""Activity goals: which goal applies to a rep, and how far the rep is along it.

Pure rules over plain rows. A goal is a per-rep target per period ("60 dials a week"); the
most specific goal wins (rep, then the rep's current role, then the rep's team or the nearest
team above it, then the tenant). Pace counts working days (Monday to Friday): a week has 5, and on Wednesday
morning two of them are behind the rep.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from libs.common.contracts.goals import GoalAttainment, GoalScope
from services.metrics.domain.periods import Period

__all__ = [
    "Attainment",
    "GoalIndex",
    "GoalRow",
    "TeamGoals",
    "attainment",
    "behind_goal",
    "describe",
    "goal_for",
    "missed_goal",
    "working_days",
]


@dataclass(frozen=True, slots=True)
class GoalRow:
    goal_id: str
    scope: GoalScope
    #: The rep or team id of a rep or team goal; the role's name of a role goal; None for the tenant.
    subject_id: str | None
    period: str
    metric: str
    target: float


#: (period, metric, scope, subject): the rep's or team's id, the role, None for the tenant.
GoalKey = tuple[str, str, GoalScope, str | None]


@dataclass(frozen=True, slots=True)
class GoalIndex:
    """A tenant's goals by what they apply to, the first in ``goal_id`` order kept: the goal of a
    rep is a few look-ups, not a read of all the tenant's goals (each rep, metric and period)."""

    by_key: dict[GoalKey, GoalRow]

    @classmethod
    def of(cls, goals: Iterable[GoalRow]) -> GoalIndex:
        by_key: dict[GoalKey, GoalRow] = {}
        for goal in goals:
            subject = None if goal.scope is GoalScope.TENANT else goal.subject_id
            by_key.setdefault((goal.period, goal.metric, goal.scope, subject), goal)
        return cls(by_key)


class TeamGoals:
    """The teams a rep's team goal may come from, read once per team rather than per rep, period and
    metric: the team and its ancestors (``chain``, nearest first; a cycle in the CRM's tree stops
    the walk), and of them the nearest holding a goal of a period and metric (``nearest``), which
    is all :func:`goal_for` reads of them.

    A tree 1,000 teams deep with 200 reps in its lowest team took the metrics refresher 50 s for
    that tenant, every other tenant's refresh waiting behind it: the chain was walked for each rep
    and period with a list for its cycle check (quadratic), and then for each metric."""

    def __init__(self, parents: Mapping[str, str | None], goals: GoalIndex) -> None:
        self._parents = parents
        self._with_goal = {key for key in goals.by_key if key[2] is GoalScope.TEAM}
        self._chains: dict[str | None, tuple[str, ...]] = {}
        self._nearest: dict[tuple[str | None, str, str], tuple[str, ...]] = {}

    def chain(self, team_id: str | None) -> tuple[str, ...]:
        found = self._chains.get(team_id)
        if found is None:
            walked: dict[str, None] = {}  # ordered, and a constant-time cycle check
            current = team_id
            while current is not None and current not in walked:
                walked[current] = None
                current = self._parents.get(current)
            found = self._chains[team_id] = tuple(walked)
        return found

    def nearest(self, team_id: str | None, period: str, metric: str) -> tuple[str, ...]:
        """The nearest team up from ``team_id`` holding a goal of ``period`` and ``metric``, alone,
        or nothing: ``goal_for``'s ``teams_up``, giving the same goal as the whole chain."""
        key = (team_id, period, metric)
        found = self._nearest.get(key)
        if found is None:
            with_goal = self._with_goal
            found = self._nearest[key] = next(
                (
                    (team,)
                    for team in self.chain(team_id)
                    if (period, metric, GoalScope.TEAM, team) in with_goal
                ),
                (),
            )
        return found


def goal_for(
    rep_id: str,
    teams_up: Sequence[str],
    period: str,
    metric: str,
    goals: GoalIndex | Iterable[GoalRow],
    *,
    role: str | None = None,
) -> GoalRow | None:
    """The goal for ``rep_id`` on ``metric`` per ``period``: the rep's own, else the goal of the
    rep's ``role`` (the rep's current role; exact match), else the nearest team's (``teams_up``:
    the rep's team first, then its ancestors), else the tenant's. Of several for one of them,
    the first in ``goals``' order. Pass a :class:`GoalIndex` when asking for many reps."""
    get = (goals if isinstance(goals, GoalIndex) else GoalIndex.of(goals)).by_key.get
    found = get((period, metric, GoalScope.REP, rep_id))
    if found is None and role is not None:
        found = get((period, metric, GoalScope.ROLE, role))
    for team_id in teams_up:
        if found is not None:
            break
        found = get((period, metric, GoalScope.TEAM, team_id))
    return found if found is not None else get((period, metric, GoalScope.TENANT, None))


@functools.lru_cache(maxsize=1_024)
def working_days(first: date, end: date) -> int:
    """Monday-to-Friday days in ``[first, end)``: five a week, then the days left over (counted
    by their weekday rather than walked day by day: a quarter is measured for every rep and metric)."""
    if end <= first:
        return 0
    weeks, rest = divmod((end - first).days, 7)
    weekday = first.weekday()
    return weeks * 5 + sum((weekday + offset) % 7 < 5 for offset in range(rest))


#: How far a rep is along a goal: the contract the gateway serves as ``GoalAttainmentRead``.
Attainment = GoalAttainment


def attainment(actual: float, target: float, period: Period, today: date) -> Attainment:
    """How far ``actual`` is along ``target`` in ``period`` as of the start of ``today``."""
    total = working_days(period.start, period.end) or (period.end - period.start).days
    if today >= period.end:
        elapsed, left, complete = total, 0, True
    else:
        elapsed = working_days(period.start, max(today, period.start))
        left, complete = total - elapsed, False
    expected = target * elapsed / total
    return Attainment(
        target=target,
        actual=actual,
        attainment=actual / target,
        expected_by_now=expected,
        pace=actual / expected if expected > 0 else None,
        days_left=left,
        complete=complete,
    )


def behind_goal(progress: Attainment, pace_threshold: float) -> bool:
    """A period in progress whose pace is below ``pace_threshold`` after at least one working day."""
    return not progress.complete and progress.pace is not None and progress.pace < pace_threshold


def missed_goal(progress: Attainment, attainment_threshold: float) -> bool:
    """A period over whose attainment ended below ``attainment_threshold`` (its pace, once complete)."""
    return progress.complete and progress.attainment < attainment_threshold


def describe(metric: str, progress: Attainment) -> str:
    """ "at 35 % of the dials goal with 2 days left"; once the period is over, "reached 35 % of the
    dials goal (21 of 60)"."""
    label = metric.replace("_", " ")
    if progress.complete:
        return (
            f"reached {round(progress.attainment * 100)} % of the {label} goal "
            f"({progress.actual:g} of {progress.target:g})"
        )
    days = "1 day" if progress.days_left == 1 else f"{progress.days_left} days"
    return f"at {round(progress.attainment * 100)} % of the {label} goal with {days} left"
