"""Deciding straight from a batch's ``ReferenceIndex`` gives the decision its snapshot gives.

``attribute_from_index`` (the consumer's, erasure's and the evaluation's path) reads the rules'
lookups from the index for the activity's participants; ``attribute_activity`` on
``snapshot_for`` builds them from the slice as a value. Every decision, explanation included,
must be the same.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    ParticipantRole,
)
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import (
    Account,
    AmbiguityPolicy,
    Contact,
    Deal,
    FormerAccount,
    FormerPhone,
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

from .builders import (
    ACCOUNTS,
    BO,
    CONTACTS,
    DEALS,
    MEMBERSHIPS,
    REPS,
    SWITCHBOARD,
    WHEN,
    email_in,
    email_out,
)
from .builders import activity as an_activity

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


def test_a_number_held_before_by_another_contact_decides_as_on_the_snapshot() -> None:
    """Oli's desk line (``+14155550150``, deal-old) went to Nat (deal-new) when Oli left on the
    10th; Mia and Max shared the switchboard (``+14155550170``) until Max dropped it on the 10th.
    Before the 10th the desk line is Oli's alone and the switchboard both's; after, Nat's and
    Mia's."""
    left = datetime(2026, 11, 10, tzinfo=UTC)
    index = ReferenceIndex()
    for account in ("acc-old", "acc-new", "acc-big"):
        index.put_account(Account(account, (f"{account}.example",)))
    index.put_contact(Contact("con-oli", account_id="acc-old"))
    index.put_contact(Contact("con-nat", phones=("+14155550150",), account_id="acc-new"))
    index.put_contact(Contact("con-mia", phones=("+14155550170",), account_id="acc-big"))
    index.put_contact(Contact("con-max", phones=("+14155550171",), account_id="acc-big"))
    index.add_former_phone(FormerPhone("+14155550150", "con-oli", left, "acc-old"))
    index.add_former_phone(FormerPhone("+14155550170", "con-max", left, "acc-big", ("con-mia",)))
    created = datetime(2026, 10, 1, tzinfo=UTC)
    for deal, account, contact in (
        ("deal-old", "acc-old", "con-oli"),
        ("deal-new", "acc-new", "con-nat"),
        ("deal-mia", "acc-big", "con-mia"),
        ("deal-max", "acc-big", "con-max"),
    ):
        index.put_deal(
            Deal(deal, account, "rep-ana", "open", False, False, created, contacts=((contact, "champion"),))
        )
    index.put_rep(Rep("rep-ana", "Ana", ("ana@seller.example",), ("+14155550001",)))
    decided = {}
    for number, day in (("+14155550150", 7), ("+14155550150", 12), ("+14155550170", 7), ("+14155550170", 12)):
        call = an_activity(
            ActivityKind.CALL,
            Direction.OUTBOUND,
            (("+14155550001", ParticipantRole.CALLER), (number, ParticipantRole.CALLEE)),
            at=datetime(2026, 11, day, 17, tzinfo=UTC),
        )
        decision = _both(call, index, POLICIES[0])
        decided[(number[-2:], day)] = (decision.status, decision.deal_id, decision.secondary_deal_ids)
    assert decided == {
        ("50", 7): (AttributionStatus.ATTRIBUTED, "deal-old", ()),
        ("50", 12): (AttributionStatus.ATTRIBUTED, "deal-new", ()),
        ("70", 7): (AttributionStatus.AMBIGUOUS, "deal-max", ("deal-mia",)),
        ("70", 12): (AttributionStatus.ATTRIBUTED, "deal-mia", ()),
    }


def test_a_call_to_a_contacts_former_number_is_on_the_account_she_was_at_then() -> None:
    """Nia moved from Old Co to New Co on the 10th, her number changing with it (her record now
    lists ``+14155550199`` at acc-new; ``+14155550150`` was hers at acc-old until then). Both
    companies have a deal of Ana's listing no contacts. Ana's call of the 7th to the old number is
    Old Co's deal, not the one of the company Nia is at now; her call of the 12th to the new number
    is New Co's."""
    moved = datetime(2026, 11, 10, tzinfo=UTC)
    index = ReferenceIndex()
    for account in ("acc-old", "acc-new"):
        index.put_account(Account(account, (f"{account}.example",)))
    index.put_contact(Contact("con-nia", phones=("+14155550199",), account_id="acc-new"))
    index.add_former_phone(FormerPhone("+14155550150", "con-nia", moved, "acc-old"))
    created = datetime(2026, 10, 1, tzinfo=UTC)
    for deal, account in (("deal-old", "acc-old"), ("deal-new", "acc-new")):
        index.put_deal(Deal(deal, account, "rep-ana", "open", False, False, created))
    index.put_rep(Rep("rep-ana", "Ana", ("ana@seller.example",), ("+14155550001",)))
    decided = {}
    for number, day in (("+14155550150", 7), ("+14155550199", 12)):
        call = an_activity(
            ActivityKind.CALL,
            Direction.OUTBOUND,
            (("+14155550001", ParticipantRole.CALLER), (number, ParticipantRole.CALLEE)),
            at=datetime(2026, 11, day, 17, tzinfo=UTC),
        )
        for policy in POLICIES:
            decision = _both(call, index, policy)
            decided[(number[-2:], day, policy.min_confidence)] = (
                decision.status,
                decision.deal_id,
                decision.account_id,
            )
    assert decided == {
        ("50", 7, POLICIES[0].min_confidence): (AttributionStatus.ATTRIBUTED, "deal-old", "acc-old"),
        ("50", 7, 0.6): (AttributionStatus.ATTRIBUTED, "deal-old", "acc-old"),
        ("99", 12, POLICIES[0].min_confidence): (AttributionStatus.ATTRIBUTED, "deal-new", "acc-new"),
        ("99", 12, 0.6): (AttributionStatus.ATTRIBUTED, "deal-new", "acc-new"),
    }


def test_a_contact_who_moved_is_decided_at_the_account_she_was_at_then() -> None:
    """Dee, with the same mobile throughout, was at Old Co until the 10th of October, at Mid Co
    until the 10th of November, at New Co since; her record now names New Co and lists her as
    champion on New Co's deal (Bo's). Old Co's and Mid Co's deals (Ana's) list nobody. Ana's calls:
    the 5th of October is Old Co's deal, the 5th of November Mid Co's, the 12th of November New
    Co's; her role on New Co's deal came with the job she took after the two earlier calls and is
    read for neither (before: both were New Co's deal, by that role). Before September she was at
    a company the CRM has deleted since: her call of the 20th of August reaches no account and no
    deal (before: New Co's deal)."""
    index = ReferenceIndex()
    for account in ("acc-old", "acc-mid", "acc-new"):
        index.put_account(Account(account, (f"{account}.example",)))
    index.put_contact(Contact("con-dee", phones=("+14155550160",), account_id="acc-new"))
    index.add_former_account(FormerAccount("con-dee", "acc-mid", datetime(2026, 11, 10, tzinfo=UTC)))
    index.add_former_account(FormerAccount("con-dee", "acc-old", datetime(2026, 10, 10, tzinfo=UTC)))
    # Before September she was at a company the CRM has deleted since (not loaded).
    index.add_former_account(FormerAccount("con-dee", "acc-gone", datetime(2026, 9, 1, tzinfo=UTC)))
    created = datetime(2026, 9, 1, tzinfo=UTC)
    for deal, account, owner, roles in (
        ("deal-old", "acc-old", "rep-ana", ()),
        ("deal-mid", "acc-mid", "rep-ana", ()),
        ("deal-new", "acc-new", "rep-bo", (("con-dee", "champion"),)),
    ):
        index.put_deal(Deal(deal, account, owner, "open", False, False, created, contacts=roles))
    index.put_rep(Rep("rep-ana", "Ana", ("ana@seller.example",), ("+14155550001",)))
    decided = {}
    for month, day in ((8, 20), (10, 5), (11, 5), (11, 12)):
        call = an_activity(
            ActivityKind.CALL,
            Direction.OUTBOUND,
            (("+14155550001", ParticipantRole.CALLER), ("+14155550160", ParticipantRole.CALLEE)),
            at=datetime(2026, month, day, 17, tzinfo=UTC),
        )
        decision = _both(call, index, POLICIES[0])
        decided[(month, day)] = (
            decision.status,
            decision.deal_id,
            decision.secondary_deal_ids,
            decision.account_id,
        )
    assert decided == {
        (8, 20): (AttributionStatus.UNMATCHED, None, (), None),
        (10, 5): (AttributionStatus.ATTRIBUTED, "deal-old", (), "acc-old"),
        (11, 5): (AttributionStatus.ATTRIBUTED, "deal-mid", (), "acc-mid"),
        (11, 12): (AttributionStatus.ATTRIBUTED, "deal-new", (), "acc-new"),
    }


def test_a_mailbox_two_records_hold_is_the_one_listing_it_as_written() -> None:
    """Pia's record (deal-x) lists ``pia@plume.example``; a web form's copy of her (deal-y) lists
    ``pia+crm@plume.example``, which is held as that mailbox too (rules 2026.12.24). Mail to
    ``pia@`` is the record listing it as written, as before the copy held it: not a tie of the
    two at half each (rules 2026.12.27); mail to ``pia+crm@`` is the copy's."""
    index = ReferenceIndex()
    index.put_account(Account("acc-p", ("plume.example",)))
    index.put_contact(Contact("con-pia", ("pia@plume.example",), (), "acc-p"))
    index.put_contact(Contact("con-pia-web", ("pia+crm@plume.example",), (), "acc-p"))
    created = datetime(2026, 10, 1, tzinfo=UTC)
    for deal, contact in (("deal-x", "con-pia"), ("deal-y", "con-pia-web")):
        index.put_deal(
            Deal(deal, "acc-p", "rep-ana", "open", False, False, created, contacts=((contact, "champion"),))
        )
    index.put_rep(Rep("rep-ana", "Ana", ("ana@seller.example",), ("+14155550001",)))
    decided = {}
    for address in ("pia@plume.example", "Pia+News@plume.example", "pia+crm@plume.example"):
        mail = an_activity(
            ActivityKind.EMAIL,
            Direction.OUTBOUND,
            (("ana@seller.example", ParticipantRole.FROM), (address, ParticipantRole.TO)),
            at=datetime(2026, 11, 5, tzinfo=UTC),
        )
        decision = _both(mail, index, POLICIES[0])
        decided[address] = (decision.status, decision.deal_id, decision.confidence)
    assert decided == {
        "pia@plume.example": (AttributionStatus.ATTRIBUTED, "deal-x", 0.95),
        "Pia+News@plume.example": (AttributionStatus.ATTRIBUTED, "deal-x", 0.95),
        "pia+crm@plume.example": (AttributionStatus.ATTRIBUTED, "deal-y", 0.95),
    }


def test_a_record_listing_only_its_tagged_address_is_found_by_its_mailbox_on_both_paths() -> None:
    """The snapshot path held a record's addresses as listed only: mail to ``pia@`` of a record
    listing ``pia+crm@`` was a close call there (ambiguous, 0.4) and her deal on the index's."""
    index = ReferenceIndex()
    index.put_account(Account("acc-p", ("plume.example",)))
    index.put_contact(Contact("con-pia-web", ("pia+crm@plume.example",), (), "acc-p"))
    created = datetime(2026, 10, 1, tzinfo=UTC)
    index.put_deal(Deal("deal-x", "acc-p", "rep-ana", "open", False, False, created))
    index.put_deal(
        Deal(
            "deal-y",
            "acc-p",
            "rep-ana",
            "open",
            False,
            False,
            created,
            contacts=(("con-pia-web", "champion"),),
        )
    )
    index.put_rep(Rep("rep-ana", "Ana", ("Ana.Lopez+crm@seller.example",), ("+14155550001",)))
    mail = an_activity(
        ActivityKind.EMAIL,
        Direction.OUTBOUND,
        (("ana.lopez@seller.example", ParticipantRole.FROM), ("pia@plume.example", ParticipantRole.TO)),
        at=datetime(2026, 11, 5, tzinfo=UTC),
    )
    decision = _both(mail, index, POLICIES[0])

    assert (decision.status, decision.deal_id, decision.rep_id) == (
        AttributionStatus.ATTRIBUTED,
        "deal-y",
        "rep-ana",
    )
