from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.metrics.domain.definitions import Counter, MetricCounts
from services.metrics.domain.insights import (
    AtRiskReason,
    AtRiskRep,
    BrightSpot,
    InsightThresholds,
    OpenDealRow,
    RepCountsRow,
    RepPeriodScore,
    RosterRep,
    StaleDeal,
    StaleReason,
    activity_mix,
    at_risk_reps,
    bright_spots,
    stale_deals,
)

DEFAULTS = InsightThresholds()
WEEKS = [date(2026, 9, 28) + timedelta(weeks=n) for n in range(9)]  # 8 trailing weeks + the evaluated one
EVALUATED = WEEKS[-1]


def _team_weeks(scores_by_rep: dict[str, list[float]], team_id: str = "team-1") -> list[RepPeriodScore]:
    """Rows for the last len(scores) weeks of each rep."""
    rows = []
    for rep_id, scores in scores_by_rep.items():
        for week, score in zip(WEEKS[-len(scores) :], scores, strict=True):
            rows.append(RepPeriodScore(rep_id, team_id, week, score))
    return rows


def test_rep_below_half_the_team_median_two_periods_running_is_at_risk() -> None:
    rows = _team_weeks({"ana": [100.0, 100.0], "bo": [80.0, 80.0], "cy": [60.0, 60.0], "di": [30.0, 10.0]})

    # medians 70 then 70: 30 and 10 are both below 35.
    assert at_risk_reps(rows, WEEKS, DEFAULTS) == [
        AtRiskRep(
            "di", "team-1", (AtRiskReason.BELOW_TEAM_MEDIAN,), 10.0, 70.0, None, None, insufficient_data=True
        )
    ]


def test_one_bad_period_is_not_a_trend() -> None:
    rows = _team_weeks({"ana": [100.0, 100.0], "bo": [80.0, 80.0], "cy": [60.0, 60.0], "di": [40.0, 10.0]})

    assert at_risk_reps(rows, WEEKS, DEFAULTS) == []


def test_a_team_too_small_for_a_median_flags_nobody() -> None:
    rows = _team_weeks({"ana": [100.0, 100.0], "di": [1.0, 1.0]})

    assert at_risk_reps(rows, WEEKS, DEFAULTS) == []


def test_a_missing_period_breaks_the_run() -> None:
    rows = _team_weeks({"ana": [100.0, 100.0], "bo": [80.0, 80.0], "cy": [60.0, 60.0], "di": [10.0]})

    assert at_risk_reps(rows, WEEKS, DEFAULTS) == []


def test_drop_of_more_than_the_threshold_against_the_own_baseline() -> None:
    rows = _team_weeks({"ana": [100.0] * 8 + [60.0]})

    assert at_risk_reps(rows, WEEKS, DEFAULTS) == [
        AtRiskRep(
            "ana",
            "team-1",
            (AtRiskReason.DROP_AGAINST_BASELINE,),
            60.0,
            None,
            100.0,
            -0.4,
            baseline_activities=0.0,
        )
    ]


def test_drop_within_the_threshold_is_not_flagged() -> None:
    rows = _team_weeks({"ana": [100.0] * 8 + [75.0]})

    assert at_risk_reps(rows, WEEKS, DEFAULTS) == []


def test_no_baseline_flag_without_enough_history() -> None:
    rows = _team_weeks({"ana": [100.0, 100.0, 100.0, 10.0]})

    assert at_risk_reps(rows, WEEKS, DEFAULTS) == []
    assert at_risk_reps(rows, WEEKS, DEFAULTS.model_copy(update={"min_baseline_periods": 3})) == [
        AtRiskRep(
            "ana",
            "team-1",
            (AtRiskReason.DROP_AGAINST_BASELINE,),
            10.0,
            None,
            100.0,
            -0.9,
            baseline_activities=0.0,
        )
    ]


def test_both_reasons_are_reported() -> None:
    rows = _team_weeks(
        {"ana": [100.0] * 9, "bo": [80.0] * 9, "cy": [60.0] * 9, "di": [50.0] * 7 + [20.0, 10.0]}
    )

    [flagged] = at_risk_reps(rows, WEEKS, DEFAULTS)

    assert flagged.reasons == (AtRiskReason.BELOW_TEAM_MEDIAN, AtRiskReason.DROP_AGAINST_BASELINE)
    assert flagged.baseline_mean == 46.25
    assert flagged.change == (10.0 - 46.25) / 46.25


def test_rep_without_a_row_in_the_evaluated_period_is_not_evaluated() -> None:
    rows = _team_weeks({"ana": [100.0] * 8 + [0.0]})
    rows = [row for row in rows if row.period_start != EVALUATED]

    assert at_risk_reps(rows, WEEKS, DEFAULTS) == []


def test_a_silent_rostered_rep_is_at_risk_for_no_activity_and_counts_as_zero_in_the_median() -> None:
    rows = _team_weeks({"ana": [100.0] * 9, "bo": [80.0] * 9, "cy": [60.0] * 9, "di": [50.0] * 9})
    rows = [
        RepPeriodScore(r.rep_id, r.team_id, r.period_start, r.score, 5)
        for r in rows
        if (r.rep_id, r.period_start) != ("di", EVALUATED)
    ]
    roster = [RosterRep(rep, "team-1") for rep in ("ana", "bo", "cy", "di", "ed")]

    flagged = at_risk_reps(rows, WEEKS, DEFAULTS, roster)

    # di: 8 weeks of 50, silent in the evaluated one; ed: never did anything (a new rep).
    assert [(rep.rep_id, rep.reasons, rep.score, rep.insufficient_data) for rep in flagged] == [
        ("di", (AtRiskReason.NO_ACTIVITY, AtRiskReason.DROP_AGAINST_BASELINE), 0.0, False),
        ("ed", (AtRiskReason.NO_ACTIVITY,), 0.0, True),
    ]
    # The median of 100, 80, 60, 0, 0 is 60: the silent reps are part of the team.
    assert flagged[0].team_median == 60.0


def test_a_rep_far_below_their_own_volume_is_at_risk_for_low_volume() -> None:
    weeks = {week: 20 for week in WEEKS[:-1]}
    rows = [RepPeriodScore("ana", "team-1", week, 100.0, count) for week, count in weeks.items()]
    rows.append(RepPeriodScore("ana", "team-1", EVALUATED, 90.0, 9))  # fewer, weightier activities

    [flagged] = at_risk_reps(rows, WEEKS, DEFAULTS)

    assert flagged.reasons == (AtRiskReason.LOW_VOLUME,)
    assert (flagged.activities, flagged.baseline_activities, flagged.change) == (9, 20.0, -0.1)
    at_half = [*rows[:-1], RepPeriodScore("ana", "team-1", EVALUATED, 90.0, 10)]
    assert at_risk_reps(at_half, WEEKS, DEFAULTS) == []


def test_a_rostered_rep_with_activity_is_not_silent() -> None:
    rows = _team_weeks({"ana": [10.0], "bo": [10.0], "cy": [10.0]})
    rows = [RepPeriodScore(r.rep_id, r.team_id, r.period_start, r.score, 3) for r in rows]

    assert at_risk_reps(rows, WEEKS, DEFAULTS, [RosterRep("ana", "team-1")]) == []


AS_OF = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _deal(
    *,
    age_days: int = 60,
    quiet_days: int | None = 1,
    reply_days: int | None = 1,
    contacts: int = 3,
) -> OpenDealRow:
    def ago(days: int | None) -> datetime | None:
        return None if days is None else AS_OF - timedelta(days=days)

    created = ago(age_days)
    assert created is not None
    return OpenDealRow("deal-1", "rep-1", created, ago(quiet_days), ago(reply_days), contacts)


@pytest.mark.parametrize(
    ("deal", "reasons"),
    [
        pytest.param(_deal(), (), id="healthy"),
        pytest.param(_deal(quiet_days=14), (StaleReason.NO_RECENT_ACTIVITY,), id="14 quiet days"),
        pytest.param(_deal(quiet_days=13), (), id="13 quiet days"),
        pytest.param(
            _deal(age_days=20, quiet_days=None, reply_days=None, contacts=0),
            (StaleReason.NO_RECENT_ACTIVITY,),
            id="never touched, measured from creation",
        ),
        pytest.param(_deal(contacts=1), (StaleReason.SINGLE_THREADED,), id="one contact"),
        pytest.param(_deal(contacts=2), (), id="two contacts"),
        pytest.param(_deal(age_days=10, contacts=1), (), id="young deal with one contact"),
        pytest.param(_deal(reply_days=21), (StaleReason.NO_BUYER_REPLY,), id="21 days without reply"),
        pytest.param(_deal(reply_days=20), (), id="20 days without reply"),
        pytest.param(_deal(age_days=5, reply_days=None), (), id="new deal not replied yet"),
        pytest.param(
            _deal(quiet_days=30, reply_days=40, contacts=1),
            (StaleReason.NO_RECENT_ACTIVITY, StaleReason.SINGLE_THREADED, StaleReason.NO_BUYER_REPLY),
            id="everything",
        ),
    ],
)
def test_stale_deal_rules(deal: OpenDealRow, reasons: tuple[StaleReason, ...]) -> None:
    flagged = stale_deals([deal], AS_OF, DEFAULTS)

    assert tuple(reason for stale in flagged for reason in stale.reasons) == reasons


def test_stale_deal_reports_its_figures() -> None:
    assert stale_deals([_deal(quiet_days=15, reply_days=22, contacts=2)], AS_OF, DEFAULTS) == [
        StaleDeal(
            "deal-1",
            "rep-1",
            (StaleReason.NO_RECENT_ACTIVITY, StaleReason.NO_BUYER_REPLY),
            15,
            22,
            2,
            age_days=60,
            last_activity_at=AS_OF - timedelta(days=15),
        )
    ]


def _reps(team_id: str, **counts: MetricCounts) -> list[RepCountsRow]:
    return [RepCountsRow(rep_id, team_id, rep_counts) for rep_id, rep_counts in counts.items()]


def test_bright_spots_rank_the_top_reps_and_compare_their_mix() -> None:
    rows = _reps(
        "team-1",
        ana=MetricCounts(dials=2, emails_sent=2, meetings_booked=5),
        bo=MetricCounts(emails_sent=4, meetings_booked=3),
        cy=MetricCounts(dials=2, emails_sent=2, meetings_held=4),
    )

    spots = bright_spots(rows, DEFAULTS, metrics=(Counter.MEETINGS_BOOKED,))

    # team mix: dials 4, emails 8, held 4 of 16 -> 1/4, 1/2, 1/4. The median is 3: bo, at it,
    # is not a bright spot; ana, 5 >= 1.5 x 3, is.
    assert spots == [
        BrightSpot(
            "team-1",
            Counter.MEETINGS_BOOKED,
            "ana",
            5,
            1,
            3.0,
            {Counter.DIALS: 0.25, Counter.EMAILS_SENT: 0.0, Counter.MEETINGS_HELD: -0.25},
            5 / 3,
        ),
    ]
    assert spots[0].why == "meetings booked 1.7 x team median (5 vs 3)"


def test_tied_reps_share_a_rank_and_are_ordered_by_id() -> None:
    rows = _reps(
        "team-1",
        cy=MetricCounts(deals_won=4),
        ana=MetricCounts(deals_won=4),
        bo=MetricCounts(deals_won=1),
        di=MetricCounts(deals_won=0),
        ed=MetricCounts(deals_won=2),
    )

    spots = bright_spots(
        rows, DEFAULTS.model_copy(update={"bright_spot_top_n": 2}), metrics=(Counter.DEALS_WON,)
    )

    assert [(spot.rep_id, spot.rank, spot.mix_difference) for spot in spots] == [
        ("ana", 1, {}),
        ("cy", 1, {}),
    ]


def test_a_rep_exactly_at_the_median_is_never_a_bright_spot() -> None:
    rows = _reps(
        "team-1",
        ana=MetricCounts(conversations=4),
        bo=MetricCounts(conversations=4),
        cy=MetricCounts(conversations=4),
        di=MetricCounts(conversations=2),
    )
    lenient = DEFAULTS.model_copy(update={"bright_spot_min_ratio_to_median": 1.0, "bright_spot_min_value": 1})

    assert bright_spots(rows, lenient, metrics=(Counter.CONVERSATIONS,)) == []


def test_a_bright_spot_needs_the_margin_and_the_minimum_value() -> None:
    rows = _reps(
        "team-1",
        ana=MetricCounts(conversations=10),  # at the median of 10
        bo=MetricCounts(conversations=10),
        cy=MetricCounts(conversations=21),  # 2.1 x
        di=MetricCounts(conversations=3),
        eve=MetricCounts(conversations=14),  # 1.4 x: short of the 1.5 margin
    )
    quiet = _reps("team-2", ed=MetricCounts(buyer_replies=1), fay=MetricCounts(), gus=MetricCounts())

    spots = bright_spots(rows + quiet, DEFAULTS, metrics=(Counter.CONVERSATIONS, Counter.BUYER_REPLIES))

    assert [(s.rep_id, s.ratio_to_median, s.why) for s in spots] == [
        ("cy", 2.1, "conversations 2.1 x team median (21 vs 10)"),
    ]


def test_small_teams_have_no_bright_spots() -> None:
    rows = _reps("team-1", ana=MetricCounts(conversations=9), bo=MetricCounts(conversations=1))

    assert bright_spots(rows, DEFAULTS) == []


def test_activity_mix() -> None:
    assert activity_mix(MetricCounts(dials=3, emails_sent=1, connects=99)) == {
        Counter.DIALS: 0.75,
        Counter.EMAILS_SENT: 0.25,
        Counter.MEETINGS_HELD: 0.0,
    }
    assert activity_mix(MetricCounts(connects=3)) is None


@pytest.mark.parametrize(
    "update",
    [
        {"at_risk_share_of_team_median": 0.0},
        {"at_risk_drop_against_baseline": 1.0},
        {"min_baseline_periods": 9},
        {"min_team_size": 1},
        {"stale_after_days": 0},
    ],
)
def test_thresholds_are_validated(update: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        InsightThresholds.model_validate(update)
