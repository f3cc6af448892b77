"""Deciding straight from a batch's ``ReferenceIndex`` gives the decision its snapshot gives.

``attribute_from_index`` (the consumer's, erasure's and the evaluation's path) reads the rules'
lookups from the index for the activity's participants; ``attribute_activity`` on
``snapshot_for`` builds them from the slice as a value. Every decision, explanation included,
must be the same.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityIngestedV1, CrmReferences
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import (
    Account,
    AmbiguityPolicy,
    Contact,
    Deal,
    ManualOverride,
    Rep,
    TenantAttributionPolicy,
)
from services.attribution.domain.reference_index import (
    ReferenceIndex,
    ThreadMember,
    attribute_from_index,
    resolve_references,
    snapshot_for,
)
from spm.evaluation.attribution.scoring import world_index
from spm.evaluation.attribution.world import CRM_STATE_AT, generate_dataset

from .builders import ACCOUNTS, BO, CONTACTS, DEALS, MEMBERSHIPS, REPS, SWITCHBOARD, WHEN, email_in, email_out

POLICIES = (
    TenantAttributionPolicy(),
    TenantAttributionPolicy(ambiguity_policy=AmbiguityPolicy.UNIQUE_ONLY, min_confidence=0.6),
)


def _both(
    activity: ActivityIngestedV1, index: ReferenceIndex, policy: TenantAttributionPolicy
) -> AttributionDecision:
    resolved = resolve_references(activity, index)
    from_snapshot = attribute_activity(resolved, snapshot_for(resolved, index), policy)
    decided = attribute_from_index(activity, index, policy)
    assert decided == from_snapshot
    assert decided.explanation == from_snapshot.explanation
    return decided


def _remember(index: ReferenceIndex, activity: ActivityIngestedV1, decision: AttributionDecision) -> None:
    if activity.thread_id is not None:
        index.remember(activity.thread_id, ThreadMember.of_decision(activity, decision))


def test_every_decision_of_the_evaluation_world_is_the_snapshots() -> None:
    dataset = generate_dataset(1_500, seed=5)
    activities = sorted(
        (labelled.activity for labelled in dataset.activities),
        key=lambda a: (a.occurred_at, str(a.activity_id)),
    )
    compared = 0
    statuses: set[AttributionStatus] = set()
    for policy in POLICIES:
        # The CRM as it stood when the activities were decided (late records absent), and complete.
        for index in (world_index(dataset.world, known_at=CRM_STATE_AT), world_index(dataset.world)):
            for activity in activities:
                decision = _both(activity, index, policy)
                _remember(index, activity, decision)
                statuses.add(decision.status)
                compared += 1
    assert compared == 6_000
    assert statuses == set(AttributionStatus)


def _index() -> ReferenceIndex:
    index = ReferenceIndex(internal_domains=frozenset({"Seller.example"}), rep_aliases={"7702": BO})
    for rep in REPS:
        index.put_rep(rep)
    # An inactive rep sharing Bo's address and an alias of Bo's with a phone of its own.
    index.put_rep(Rep("rep-aa-old", "Bo", ("bo@seller.example",), (), active=False))
    index.put_rep(Rep("7702", "Bo", ("BO.HS@seller.example",), ("+14155550009",)))
    for membership in MEMBERSHIPS:
        index.add_membership(membership)
    for account in ACCOUNTS:
        index.put_account(account)
    # Upper case and a trailing dot, as CRMs type them; a second account on acme.io.
    index.put_account(Account("acc-acme-labs", ("ACME.io.", "labs.acme.io")))
    # A domain typed with a leading space: the index files it trimmed, the rules compare it as typed.
    index.put_account(Account("acc-spaced", (" spaced.example",)))
    index.put_contact(Contact("con-sam", ("sam@spaced.example",), (), "acc-spaced"))
    for contact in CONTACTS:
        index.put_contact(contact)
    index.put_contact(Contact("con-lab", ("Lee@labs.acme.io",), (SWITCHBOARD,), "acc-acme-labs"))
    for deal in DEALS:
        index.put_deal(deal)
    index.put_deal(
        Deal(
            "deal-labs", "acc-acme-labs", "7702", "discovery", False, False, datetime(2026, 3, 2, tzinfo=UTC)
        )
    )
    # A deal nobody in the activities below points at: a thread's secondary only.
    index.put_deal(Deal("deal-far", None, BO, "discovery", False, False, datetime(2026, 1, 2, tzinfo=UTC)))
    return index


CASES = (
    email_out("ana@seller.example", "amy@acme.com"),
    email_out("bo@seller.example", "al@acme.com", "ann@acme.com"),
    email_out("bo.hs@seller.example", "lee@labs.acme.io"),
    email_out("ana@seller.example", "someone@acme.io"),
    email_out("ana@seller.example", "someone@eu.labs.acme.io"),
    email_in("gus.private@gmail.com", "cy@seller.example"),
    email_in("stranger@gmail.com", "cy@seller.example", "bo@seller.example"),
    email_out("ana@seller.example", "bo@seller.example"),
    email_out("ana@seller.example", SWITCHBOARD),
    email_out("+14155550009", SWITCHBOARD),
    email_out("ana@seller.example", "x@acme.com", crm=CrmReferences(contact_ids=("con-gia", "con-gone"))),
    email_out("ana@seller.example", "bob@a. spaced.example"),
    email_out("ana@seller.example", "bob@a. spaced.example", "sam@spaced.example"),
    email_out("ana@seller.example", "x@nowhere.example", crm=CrmReferences(deal_id="deal-labs")),
    email_out("ana@seller.example", "x@nowhere.example", crm=CrmReferences(owner_rep_id="7702")),
    email_out("ana@seller.example", "x@nowhere.example", crm=CrmReferences(account_id="acc-globex")),
)


def test_ties_case_and_aliases_decide_as_on_the_snapshot() -> None:
    index = _index()
    decisions = [_both(case, index, policy) for case in CASES for policy in POLICIES]
    assert len(decisions) == 32
    # The active rep wins Bo's shared address; the alias's phone credits Bo.
    assert decisions[2].rep_id == BO
    assert decisions[18].rep_id == BO
    # The rules compare a domain typed with a leading space as typed, and only among the accounts
    # the slice holds: the address alone finds no account, with the account's contact it does.
    assert decisions[22].status is AttributionStatus.UNMATCHED
    assert decisions[24].account_id == "acc-spaced"


def test_threads_and_overrides_decide_as_on_the_snapshot() -> None:
    index = _index()
    first = email_out("ana@seller.example", "amy@acme.com", thread_id="t-1")
    decision = _both(first, index, POLICIES[0])
    index.remember(
        "t-1",
        ThreadMember(
            first.activity_id,
            first.occurred_at,
            1,
            AttributionStatus.AMBIGUOUS.value,
            decision.rep_id,
            "acc-acme",
            "deal-acme-new",
            ("deal-far",),
            0.8,
        ),
    )
    reply = email_in("stranger@gmail.com", "ana@seller.example", thread_id="t-1", at=WHEN.replace(hour=11))
    reply = reply.model_copy(update={"activity_id": uuid.UUID(int=2)})
    assert _both(reply, index, POLICIES[0]).rule_path == "thread"
    for override in (
        ManualOverride(rep_id="7702"),
        ManualOverride(rep_id=BO),
        ManualOverride(deal_id="deal-far", set_by="lead", reason="moved"),
        ManualOverride(rep_id="rep-cy", team_id="team-x"),
    ):
        index.overrides[reply.activity_id] = override
        overridden = _both(reply, index, POLICIES[0])
        assert overridden.overridden
    assert _both(reply.model_copy(update={"thread_id": None}), index, POLICIES[0]).overridden
