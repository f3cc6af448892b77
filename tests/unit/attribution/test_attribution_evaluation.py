"""The accuracy harness: a fixed seed gives fixed figures, and the rules beat the naive one."""

from __future__ import annotations

from collections import Counter

import pytest

from libs.common.contracts.attribution import AttributionStatus
from spm.evaluation.attribution import (
    EvaluationReport,
    Scorecard,
    Trap,
    generate_dataset,
    run_evaluation,
)


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return run_evaluation(600, seed=7)


def test_the_figures_for_a_fixed_seed(report: EvaluationReport) -> None:
    assert report.ours == Scorecard(
        activities=600,
        deal_truths=528,
        deal_predictions=528,
        deal_correct=479,
        rep_correct=596,
        team_correct=599,
    )
    assert report.ours_unique_only == Scorecard(
        activities=600,
        deal_truths=528,
        deal_predictions=416,
        deal_correct=414,
        rep_correct=589,
        team_correct=592,
    )
    assert report.naive == Scorecard(
        activities=600,
        deal_truths=528,
        deal_predictions=225,
        deal_correct=45,
        rep_correct=510,
        team_correct=538,
    )
    assert report.naive_live == Scorecard(
        activities=600,
        deal_truths=528,
        deal_predictions=424,
        deal_correct=313,
        rep_correct=519,
        team_correct=558,
    )
    assert report.statuses == {
        AttributionStatus.AMBIGUOUS: 112,
        AttributionStatus.ATTRIBUTED: 416,
        AttributionStatus.EXCLUDED: 22,
        AttributionStatus.INTERNAL: 19,
        AttributionStatus.UNMATCHED: 31,
    }
    assert round(report.ours.precision or 0, 4) == 0.9072
    assert round(report.ours_unique_only.precision or 0, 4) == 0.9952
    assert round(report.ours_unique_only.recall or 0, 4) == 0.7841


def test_per_trap_figures_next_to_the_naive_rule_at_event_time(report: EvaluationReport) -> None:
    correct = {
        trap.value: (ours.deal_correct, naive.deal_correct) for trap, (ours, naive) in report.by_trap.items()
    }

    assert correct == {
        "single_open_deal": (128, 131),
        "several_open_deals": (77, 49),
        "personal_domain": (35, 0),
        "shared_phone": (31, 0),
        "phone_only_call": (37, 0),
        "internal_meeting": (0, 0),
        "closed_reopened": (38, 33),
        "late_crm": (31, 20),
        "thread_reply": (30, 22),
        "automated": (0, 0),
        "customer_meeting": (31, 24),
        "unknown_prospect": (0, 0),
        "shared_inbox": (26, 21),
        "unknown_alias": (15, 13),
    }
    automated_ours, automated_naive = report.by_trap[Trap.AUTOMATED]
    assert (automated_ours.deal_predictions, automated_naive.deal_predictions) == (0, 14)


def test_late_crm_data_is_scored_after_the_rematch_and_the_first_pass_is_reported(
    report: EvaluationReport,
) -> None:
    late, _ = report.by_trap[Trap.LATE_CRM]

    assert (late.deal_correct, late.activities) == (31, 31)
    assert (report.late_crm_first_pass.deal_correct, report.late_crm_first_pass.activities) == (21, 31)


def test_ours_beats_both_naive_readings(report: EvaluationReport) -> None:
    for naive in (report.naive, report.naive_live):
        assert (report.ours.precision or 0) > (naive.precision or 0)
        assert (report.ours.recall or 0) > (naive.recall or 0)
        assert report.ours.rep_accuracy > naive.rep_accuracy


def test_the_report_renders_every_trap(report: EvaluationReport) -> None:
    text = report.render()

    assert "600 synthetic activities (seed 7)" in text
    assert "re-match after late CRM data arrived" in text
    assert all(trap.value in text for trap in Trap)


def test_the_dataset_has_the_requested_size_every_trap_and_is_reproducible() -> None:
    first = generate_dataset(300, seed=3)
    again = generate_dataset(300, seed=3)

    assert len(first.activities) == 300
    assert [a.activity for a in first.activities] == [a.activity for a in again.activities]
    assert set(Counter(a.trap for a in first.activities)) == set(Trap)
    assert len({a.activity.activity_id for a in first.activities}) == 300


def test_a_dataset_needs_activities() -> None:
    with pytest.raises(ValueError, match="positive"):
        generate_dataset(0, seed=1)
