from __future__ import annotations

import time
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from libs.common.contracts.goals import ActivityGoal, GoalScope
from services.metrics.domain.goals import (
    GoalIndex,
    GoalRow,
    TeamGoals,
    attainment,
    behind_goal,
    describe,
    goal_for,
    missed_goal,
    working_days,
)
from services.metrics.domain.periods import FiscalCalendar, Grain

CALENDAR = FiscalCalendar(zone=ZoneInfo("UTC"))
WEEK = CALENDAR.period_of(date(2026, 11, 23), Grain.WEEK)  # Monday 23 .. Sunday 29 November
GOALS = [
    GoalRow("tenant-dials", GoalScope.TENANT, None, "week", "dials", 50.0),
    GoalRow("east-dials", GoalScope.TEAM, "team-east", "week", "dials", 60.0),
    GoalRow("ana-dials", GoalScope.REP, "rep-ana", "week", "dials", 80.0),
    GoalRow("east-held", GoalScope.TEAM, "team-east", "week", "meetings_held", 8.0),
    GoalRow("sdr-dials", GoalScope.ROLE, "SDR", "week", "dials", 70.0),
    GoalRow("ae-held", GoalScope.ROLE, "Account Executive", "week", "meetings_held", 10.0),
]


def test_the_most_specific_goal_wins() -> None:
    assert goal_for("rep-ana", ["team-east"], "week", "dials", GOALS).goal_id == "ana-dials"  # type: ignore[union-attr]
    # A team's goal reaches the teams below it: the nearest team up the tree wins.
    assert goal_for("rep-bo", ["team-east-1", "team-east"], "week", "dials", GOALS).goal_id == "east-dials"  # type: ignore[union-attr]
    assert goal_for("rep-cy", ["team-west"], "week", "dials", GOALS).goal_id == "tenant-dials"  # type: ignore[union-attr]
    assert goal_for("rep-cy", ["team-west"], "week", "meetings_held", GOALS) is None
    assert goal_for("rep-bo", ["team-east"], "month", "dials", GOALS) is None


def test_a_role_goal_sits_between_the_reps_own_and_the_teams() -> None:
    def goal_id(
        rep: str, role: str | None, metric: str = "dials", teams: tuple[str, ...] = ("team-east",)
    ) -> str | None:
        goal = goal_for(rep, list(teams), "week", metric, GOALS, role=role)
        return None if goal is None else goal.goal_id

    # rep > role > team > tenant.
    assert goal_id("rep-ana", "SDR") == "ana-dials"
    assert goal_id("rep-bo", "SDR") == "sdr-dials"
    assert goal_id("rep-bo", "SDR", teams=("team-west",)) == "sdr-dials"
    assert goal_id("rep-bo", "Account Executive") == "east-dials"  # no AE goal on dials: the team's
    assert goal_id("rep-bo", None) == "east-dials"
    assert goal_id("rep-cy", "Account Executive", teams=("team-west",)) == "tenant-dials"
    assert goal_id("rep-cy", "Account Executive", "meetings_held", ("team-west",)) == "ae-held"
    assert goal_id("rep-cy", "Account Executive", "meetings_held") == "ae-held"  # over east-held
    # The role must match exactly: another role, or another spelling, is not the goal's.
    assert goal_id("rep-bo", "sdr") == "east-dials"
    assert goal_id("rep-bo", "SDR Manager") == "east-dials"
    assert goal_for("rep-bo", [], "month", "dials", GOALS, role="SDR") is None


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


def test_a_complete_week_below_the_threshold_is_a_missed_goal() -> None:
    # Monday morning: last week is over; 35 of 60 dials is 58 %, under 60 %; 36 of 60 is not.
    missed = attainment(35.0, 60.0, WEEK, date(2026, 11, 30))
    assert missed_goal(missed, 0.6)
    assert not missed_goal(attainment(36.0, 60.0, WEEK, date(2026, 11, 30)), 0.6)
    assert describe("dials", missed) == "reached 58 % of the dials goal (35 of 60)"
    assert describe("meetings_held", attainment(0.0, 2.0, WEEK, date(2026, 12, 1))) == (
        "reached 0 % of the meetings held goal (0 of 2)"
    )
    # A week in progress is never missed, however far behind.
    assert not missed_goal(attainment(0.0, 60.0, WEEK, date(2026, 11, 27)), 0.6)


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


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"scope": "role"}, "role", "role is required for a role goal"),
        ({"scope": "role", "role": "   "}, "role", "String should have at least 1 character"),
        (
            {"scope": "role", "role": "SDR", "subject_id": "rep-1"},
            "subject_id",
            "subject_id is forbidden for a role goal",
        ),
        (
            {"scope": "team", "subject_id": "team-east", "role": "SDR"},
            "role",
            "role is forbidden for a team goal",
        ),
        ({"scope": "tenant", "role": "SDR"}, "role", "role is forbidden for a tenant goal"),
        ({"scope": "rep"}, "subject_id", "subject_id is required for a rep goal: a rep id"),
        (
            {"scope": "tenant", "subject_id": "rep-1"},
            "subject_id",
            "subject_id is forbidden for a tenant goal",
        ),
    ],
)
def test_a_goal_that_names_the_wrong_subject_is_refused_naming_the_field(
    change: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ActivityGoal.model_validate({"period": "week", "metric": "dials", "target": 60, **change})
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [((field,), reason)]


def test_a_role_goal_names_its_role_trimmed() -> None:
    goal = ActivityGoal.model_validate(
        {"scope": "role", "role": " SDR ", "period": "week", "metric": "dials", "target": 60}
    )
    assert (goal.scope, goal.role, goal.subject_id) == (GoalScope.ROLE, "SDR", None)


def test_the_nearest_team_holding_a_goal_is_read_once_per_team_and_a_cycle_stops_the_walk() -> None:
    parents: dict[str, str | None] = {"team-east-1": "team-east", "team-east": "team-all", "team-all": None}
    teams = TeamGoals({**parents, "loop-a": "loop-b", "loop-b": "loop-a"}, GoalIndex.of(GOALS))
    assert teams.chain("team-east-1") == ("team-east-1", "team-east", "team-all")
    assert teams.chain("loop-a") == ("loop-a", "loop-b")
    assert teams.chain(None) == ()
    assert teams.nearest("team-east-1", "week", "dials") == ("team-east",)
    assert teams.nearest("team-east-1", "week", "activities") == ()
    assert teams.nearest("loop-a", "week", "dials") == ()
    # goal_for over the nearest team alone answers as over the whole chain.
    for team in ("team-east-1", "team-east", "team-all", "loop-a", None):
        for metric in ("dials", "meetings_held", "activities"):
            for rep, role in (("rep-ana", None), ("rep-bo", "SDR"), ("rep-cy", None)):
                assert goal_for(
                    rep, teams.nearest(team, "week", metric), "week", metric, GOALS, role=role
                ) == (goal_for(rep, teams.chain(team), "week", metric, GOALS, role=role))


def test_a_chain_fifty_thousand_teams_deep_is_walked_in_linear_time() -> None:
    """The walk's cycle check was a list: quadratic, minutes for this chain, 15 s of the
    metrics refresher's time for a tenant with 100 reps 1,000 teams deep."""
    parents: dict[str, str | None] = {f"t-{i}": f"t-{i - 1}" if i else None for i in range(50_000)}
    started = time.monotonic()
    teams = TeamGoals(parents, GoalIndex.of([GoalRow("root", GoalScope.TEAM, "t-0", "week", "dials", 9.0)]))
    assert teams.nearest("t-49999", "week", "dials") == ("t-0",)
    assert len(teams.chain("t-49999")) == 50_000
    assert time.monotonic() - started < 1.0
