from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from services.metrics.domain.periods import FiscalCalendar, Grain
from services.metrics.domain.read_models import Membership, RepPeriodStat, TeamDirectory, rep_period_stats

CALENDAR = FiscalCalendar(zone=ZoneInfo("UTC"))
CURRENT = CALENDAR.period_of(date(2026, 11, 23), Grain.WEEK)
# Eight weeks of history before two reported weeks.
PERIODS = [*CALENDAR.trailing(CURRENT, 9), CURRENT]
TEAMS = TeamDirectory(
    [
        Membership("rep-a", "team-1", date(2026, 1, 1), None),
        Membership("rep-b", "team-1", date(2026, 1, 1), None),
        Membership("rep-c", "team-1", date(2026, 1, 1), date(2026, 11, 22)),
        Membership("rep-c", "team-2", date(2026, 11, 22), None),
    ]
)


def test_the_team_is_the_one_held_on_the_last_day_of_the_period() -> None:
    assert TEAMS.team_on("rep-c", date(2026, 11, 21)) == "team-1"
    assert TEAMS.team_at_end_of("rep-c", CALENDAR.period_of(date(2026, 11, 16), Grain.WEEK)) == "team-2"
    assert TEAMS.team_on("rep-z", date(2026, 11, 21)) is None


def test_stats_rank_within_the_team_and_compare_with_the_reps_own_trailing_periods() -> None:
    history = {period.start: 10.0 for period in PERIODS[2:8]}  # six of the eight weeks before the last two
    scores = {
        "rep-a": {**history, PERIODS[8].start: 5.0, CURRENT.start: 20.0},
        "rep-b": {PERIODS[8].start: 5.0, CURRENT.start: 30.0},
        "rep-c": {PERIODS[8].start: 1.0},
    }

    stats = rep_period_stats(scores, PERIODS, 2, TEAMS, min_baseline_periods=4)

    last_week, this_week = PERIODS[8].start, CURRENT.start
    assert stats == [
        # Last week rep c ended on team 2, alone: no percentile; a and b tie at 50.
        RepPeriodStat("rep-a", "team-1", last_week, 5.0, 50.0, 10.0, 6, -0.5),
        RepPeriodStat("rep-b", "team-1", last_week, 5.0, 50.0, None, 0, None, insufficient_data=True),
        RepPeriodStat("rep-c", "team-2", last_week, 1.0, None, None, 0, None, insufficient_data=True),
        # This week a's baseline holds 7 periods (last week's 5 included): mean 65 / 7.
        RepPeriodStat("rep-a", "team-1", this_week, 20.0, 0.0, 65 / 7, 7, (20.0 - 65 / 7) / (65 / 7)),
        RepPeriodStat("rep-b", "team-1", this_week, 30.0, 100.0, None, 1, None, insufficient_data=True),
        # Silent this week, still on team 2: a zero row, not an absence.
        RepPeriodStat("rep-c", "team-2", this_week, 0.0, None, None, 1, None, insufficient_data=True),
    ]


def test_every_active_member_has_a_row_silent_ones_at_zero_and_ranked_last() -> None:
    teams = TeamDirectory(
        [
            Membership("rep-a", "team-1", date(2026, 1, 1), None),
            Membership("rep-b", "team-1", date(2026, 1, 1), None),
            Membership("rep-s", "team-1", date(2026, 1, 1), None),
            Membership("rep-gone", "team-1", date(2026, 1, 1), None),
            Membership("rep-left", "team-1", date(2026, 1, 1), date(2026, 11, 1)),
        ],
        inactive=["rep-gone"],
    )
    scores = {"rep-a": {CURRENT.start: 20.0}, "rep-b": {CURRENT.start: 10.0}}
    activities = {"rep-a": {CURRENT.start: 4}, "rep-b": {CURRENT.start: 2}}

    stats = rep_period_stats(scores, PERIODS, 1, teams, min_baseline_periods=4, activities=activities)

    assert [(s.rep_id, s.score, s.activities, s.team_percentile, s.insufficient_data) for s in stats] == [
        ("rep-a", 20.0, 4, 100.0, True),
        ("rep-b", 10.0, 2, 50.0, True),
        ("rep-s", 0.0, 0, 0.0, True),
    ]


def test_member_throughout_needs_a_team_every_day_of_the_period() -> None:
    teams = TeamDirectory(
        [
            Membership("rep-a", "team-1", date(2026, 1, 1), None),
            Membership("rep-new", "team-1", date(2026, 11, 25), None),
            Membership("rep-moved", "team-1", date(2026, 1, 1), date(2026, 11, 25)),
            Membership("rep-moved", "team-2", date(2026, 11, 25), None),
            Membership("rep-off", "team-1", date(2026, 1, 1), None),
        ],
        inactive=["rep-off"],
    )

    assert teams.member_throughout("rep-a", CURRENT)
    assert not teams.member_throughout("rep-new", CURRENT)  # joined on the Wednesday
    assert teams.member_throughout("rep-moved", CURRENT)  # changed teams, never teamless
    assert not teams.member_throughout("rep-off", CURRENT)
    assert teams.roster_at_end_of(CURRENT) == {"rep-a": "team-1", "rep-new": "team-1", "rep-moved": "team-2"}


def test_a_deal_of_an_owner_who_left_stays_on_her_last_team_whether_or_not_her_membership_ended() -> None:
    teams = TeamDirectory(
        [
            Membership("rep-open", "team-1", date(2026, 1, 1), None),
            Membership("rep-ended", "team-1", date(2026, 1, 1), date(2026, 6, 1)),
            Membership("rep-ended", "team-2", date(2026, 6, 1), date(2026, 11, 18)),
            Membership("rep-ended", "team-3", date(2026, 12, 1), None),  # a return not started yet
            Membership("rep-between", "team-1", date(2026, 1, 1), date(2026, 11, 18)),
        ],
        inactive=["rep-open", "rep-ended"],
    )
    today = date(2026, 11, 30)

    assert teams.owners_team_on("rep-open", today) == "team-1"
    assert teams.owners_team_on("rep-ended", today) == "team-2"
    # An active rep between teams, and a rep on no team at all, stay on none.
    assert teams.owners_team_on("rep-between", today) is None
    assert teams.owners_team_on("rep-nobody", today) is None
    # Nobody is on a roster for it.
    assert teams.roster_at_end_of(CALENDAR.period_of(today, Grain.WEEK)) == {}
