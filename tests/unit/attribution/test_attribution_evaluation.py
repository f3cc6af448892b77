"""The accuracy harness: a fixed seed gives fixed figures, on the production path, and the rules
beat the naive one."""

from __future__ import annotations

from collections import Counter

import pytest

from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.reference import TenantAttributionPolicy
from spm.evaluation.attribution import (
    EvaluationReport,
    Scorecard,
    Trap,
    generate_dataset,
    run_evaluation,
)
from spm.evaluation.attribution.scoring import ingested_contact, replay, world_index


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return run_evaluation(600, seed=7)


def test_the_figures_for_a_fixed_seed(report: EvaluationReport) -> None:
    assert report.ours == Scorecard(
        activities=600,
        deal_truths=520,
        deal_predictions=520,
        deal_correct=502,
        rep_correct=600,
        team_correct=600,
    )
    # Metrics credits a deal only for ``attributed``: the ambiguous primaries are not given.
    assert report.ours_credited == Scorecard(
        activities=600,
        deal_truths=520,
        deal_predictions=471,
        deal_correct=468,
        rep_correct=600,
        team_correct=600,
    )
    assert report.surfaced == 515
    assert report.ours_unique_only == Scorecard(
        activities=600,
        deal_truths=520,
        deal_predictions=471,
        deal_correct=468,
        rep_correct=598,
        team_correct=600,
    )
    assert report.naive == Scorecard(
        activities=600,
        deal_truths=520,
        deal_predictions=298,
        deal_correct=65,
        rep_correct=470,
        team_correct=556,
    )
    assert report.naive_live == Scorecard(
        activities=600,
        deal_truths=520,
        deal_predictions=413,
        deal_correct=277,
        rep_correct=512,
        team_correct=584,
    )
    assert report.statuses == {
        AttributionStatus.AMBIGUOUS: 49,
        AttributionStatus.ATTRIBUTED: 471,
        AttributionStatus.EXCLUDED: 19,
        AttributionStatus.INTERNAL: 30,
        AttributionStatus.UNMATCHED: 31,
    }
    assert round(report.ours.precision or 0, 4) == 0.9654
    # 13 of the 18 misses are close calls: the true deal is among the secondaries.
    assert report.close_call_misses == 13
    assert round(report.ours_unique_only.precision or 0, 4) == 0.9936
    assert round(report.ours_unique_only.recall or 0, 4) == 0.9


def test_per_trap_figures_next_to_the_naive_rule_at_event_time(report: EvaluationReport) -> None:
    correct = {
        trap.value: (ours.deal_correct, naive.deal_correct) for trap, (ours, naive) in report.by_trap.items()
    }

    assert correct == {
        "single_open_deal": (82, 83),
        "several_open_deals": (66, 39),
        "personal_domain": (23, 0),
        "shared_phone": (22, 0),
        "phone_only_call": (43, 0),
        "internal_meeting": (0, 0),
        "closed_reopened": (34, 19),
        "late_crm": (21, 11),
        "thread_reply": (56, 30),
        "automated": (0, 0),
        "customer_meeting": (36, 23),
        "unknown_prospect": (0, 0),
        "shared_inbox": (27, 18),
        "unknown_alias": (16, 10),
        "late_deal": (20, 14),
        "rep_several_sources": (25, 0),
        "no_contact_role": (31, 30),
    }
    automated_ours, automated_naive = report.by_trap[Trap.AUTOMATED]
    assert (automated_ours.deal_predictions, automated_naive.deal_predictions) == (0, 17)


def test_late_data_is_scored_after_its_rematch_and_the_first_pass_is_reported(
    report: EvaluationReport,
) -> None:
    late_contacts, _ = report.by_trap[Trap.LATE_CRM]
    late_deals, _ = report.by_trap[Trap.LATE_DEAL]

    assert (late_contacts.deal_correct, late_contacts.activities) == (21, 22)
    assert (late_deals.deal_correct, late_deals.activities) == (20, 20)
    first_contacts, first_deals = report.first_pass[Trap.LATE_CRM], report.first_pass[Trap.LATE_DEAL]
    assert (first_contacts.deal_correct, first_contacts.activities) == (14, 22)
    # Before its deal reaches the CRM, no activity of the trap can be on it.
    assert (first_deals.deal_correct, first_deals.activities) == (0, 20)
    assert report.rematched == 61


def test_a_person_known_to_several_sources_is_credited_as_one_rep(report: EvaluationReport) -> None:
    several, naive = report.by_trap[Trap.REP_SEVERAL_SOURCES]

    assert (several.rep_correct, several.team_correct, several.activities) == (26, 26, 26)
    assert naive.deal_correct == 0


def test_crm_phones_typed_in_national_formats_are_read_as_e164() -> None:
    dataset = generate_dataset(300, seed=3)
    typed = [c for c in dataset.world.contacts if c.phones and not c.phones[0].startswith("+1")]

    assert typed
    for contact in typed[:20]:
        assert all(p.startswith("+1") and p[1:].isdigit() for p in ingested_contact(contact).phones)
    index = world_index(dataset.world)
    assert all(phone.startswith("+") for contact in index.contacts.values() for phone in contact.phones)


def test_every_activity_is_decided_once_and_redecided_only_through_versions() -> None:
    dataset = generate_dataset(300, seed=3)
    run = replay(dataset, TenantAttributionPolicy())

    assert set(run.current) == {a.activity.activity_id for a in dataset.activities}
    assert all(held.version >= 1 for held in run.current.values())
    assert set(run.first) == set(run.current)


def test_ours_beats_both_naive_readings(report: EvaluationReport) -> None:
    for naive in (report.naive, report.naive_live):
        assert (report.ours.precision or 0) > (naive.precision or 0)
        assert (report.ours.recall or 0) > (naive.recall or 0)
        assert report.ours.rep_accuracy > naive.rep_accuracy


def test_the_report_renders_every_trap(report: EvaluationReport) -> None:
    text = report.render()

    assert "600 synthetic activities (seed 7)" in text
    assert "after late CRM data arrived and its re-matches ran" in text
    assert all(trap.value in text for trap in Trap)
    assert "late_deal first pass" in text


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


def test_deals_are_named_after_their_product_and_subjects_sometimes_name_it() -> None:
    dataset = generate_dataset(300, seed=3)
    names = {deal.id: deal.name for deal in dataset.world.deals}
    with_deal = [a for a in dataset.activities if a.true_deal_id is not None]
    naming = [
        a
        for a in with_deal
        if a.activity.subject and names[a.true_deal_id or ""].split(" - ")[1] in a.activity.subject
    ]

    assert all(" - " in name for name in names.values())
    assert all(a.activity.subject is None for a in dataset.activities if a.activity.kind.value == "call")
    assert 0 < len(naming) < len(with_deal)


def test_an_alias_made_from_the_reps_name_credits_that_rep(report: EvaluationReport) -> None:
    alias, naive = report.by_trap[Trap.UNKNOWN_ALIAS]

    assert (alias.rep_correct, alias.activities) == (18, 18)
    assert naive.rep_correct == 12
