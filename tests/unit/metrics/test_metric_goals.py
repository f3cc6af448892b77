from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from libs.common.contracts.goals import ActivityGoal, GoalScope
from services.metrics.domain.goals import GoalRow, attainment, behind_goal, describe, goal_for, working_days
from services.metrics.domain.periods import FiscalCalendar, Grain

CALENDAR = FiscalCalendar(zone=ZoneInfo("UTC"))
WEEK = CALENDAR.period_of(date(2026, 11, 23), Grain.WEEK)  # Monday 23 .. Sunday 29 November
GOALS = [
    GoalRow("tenant-dials", GoalScope.TENANT, None, "week", "dials", 50.0),
    GoalRow("east-dials", GoalScope.TEAM, "team-east", "week", "dials", 60.0),
    GoalRow("ana-dials", GoalScope.REP, "rep-ana", "week", "dials", 80.0),
    GoalRow("east-held", GoalScope.TEAM, "team-east", "week", "meetings_held", 8.0),
]


def test_the_most_specific_goal_wins() -> None:
    assert goal_for("rep-ana", ["team-east"], "week", "dials", GOALS).goal_id == "ana-dials"  # type: ignore[union-attr]
    # A team's goal reaches the teams below it: the nearest team up the tree wins.
    assert goal_for("rep-bo", ["team-east-1", "team-east"], "week", "dials", GOALS).goal_id == "east-dials"  # type: ignore[union-attr]
    assert goal_for("rep-cy", ["team-west"], "week", "dials", GOALS).goal_id == "tenant-dials"  # type: ignore[union-attr]
    assert goal_for("rep-cy", ["team-west"], "week", "meetings_held", GOALS) is None
    assert goal_for("rep-bo", ["team-east"], "month", "dials", GOALS) is None


def test_working_days_skip_weekends() -> None:
    assert working_days(WEEK.start, WEEK.end) == 5
    assert working_days(date(2026, 11, 1), date(2026, 12, 1)) == 21


def test_pace_in_a_week_in_progress() -> None:
    # Thursday morning: Monday to Wednesday are behind the rep, Thursday and Friday left.
    progress = attainment(21.0, 60.0, WEEK, date(2026, 11, 26))

    assert (progress.attainment, progress.expected_by_now, progress.days_left, progress.complete) == (
        0.35,
        36.0,
        2,
        False,
    )
    assert progress.pace == pytest.approx(21 / 36)
    assert behind_goal(progress, 0.6)
    assert not behind_goal(progress, 0.5)
    assert describe("dials", progress) == "at 35 % of the dials goal with 2 days left"


def test_no_pace_before_the_first_working_day_and_a_complete_week_has_none_left() -> None:
    monday = attainment(0.0, 60.0, WEEK, date(2026, 11, 23))
    assert (monday.pace, monday.days_left, behind_goal(monday, 0.6)) == (None, 5, False)
    done = attainment(66.0, 60.0, WEEK, date(2026, 11, 30))
    assert (done.attainment, done.pace, done.days_left, done.complete) == (1.1, 1.1, 0, True)
    assert not behind_goal(attainment(0.0, 60.0, WEEK, date(2026, 12, 1)), 0.6)


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "rep", "period": "week", "metric": "dials", "target": 60},
        {"scope": "tenant", "subject_id": "rep-1", "period": "week", "metric": "dials", "target": 60},
        {"scope": "rep", "subject_id": "rep-1", "period": "week", "metric": "charisma", "target": 60},
        {"scope": "rep", "subject_id": "rep-1", "period": "week", "metric": "dials", "target": 0},
        {"scope": "rep", "subject_id": "rep-1", "period": "fortnight", "metric": "dials", "target": 5},
    ],
)
def test_goals_are_validated(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ActivityGoal.model_validate(body)
