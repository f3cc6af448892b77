"""A bare account merge: the CRM sends only the merged account's record (``merged_into``), not the
survivor with the merged account's domains nor its deals and contacts re-parented. Everything of
the merged account is then the survivor's, as the CRM shows it after the merge: its domains (but
one a live account holds itself), its contacts and deals; the snapshot path decides the same."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityIngestedV1, CrmReferences
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.reference import Account, Contact, Deal, Rep, TenantAttributionPolicy
from services.attribution.domain.reference_index import (
    ReferenceIndex,
)

from .builders import decided_both_ways, email_in, email_out

ANA, BO = "rep-ana", "rep-bo"
POLICY = TenantAttributionPolicy()
OPENED = datetime(2026, 3, 1, tzinfo=UTC)
ACC_2 = Account("acc-2", ("other.example", "shared.example"))
CON_X = Contact("con-x", ("x@other.example",), (), "acc-2")
DEAL_1 = Deal("deal-1", "acc-1", ANA, "closed_won", True, True, OPENED, datetime(2026, 3, 20, tzinfo=UTC))
DEAL_2 = Deal("deal-2", "acc-2", BO, "proposal", False, False, OPENED, None, (("con-x", "champion"),))


def _index(merge_first: bool, survivor: str | None = "acc-1") -> ReferenceIndex:
    """acc-1 (buyer.example, its one deal won in March) survives acc-2 (other.example and
    shared.example; Bo's open deal-2 with con-x), which the CRM sent alone; acc-3 holds
    shared.example itself. ``merge_first``: the merge is learnt before the contacts and deals."""
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    index.put_rep(Rep(ANA, "Ana", ("ana@seller.example",)))
    index.put_rep(Rep(BO, "Bo", ("bo@seller.example",)))
    index.put_account(Account("acc-1", ("buyer.example",)))
    index.put_account(Account("acc-3", ("shared.example",)))
    if merge_first:
        index.put_merged_account(ACC_2, survivor)
    index.put_contact(CON_X)
    index.put_deal(DEAL_1)
    index.put_deal(DEAL_2)
    if not merge_first:
        index.put_merged_account(ACC_2, survivor)
    return index


def _decide(activity: ActivityIngestedV1, index: ReferenceIndex) -> AttributionDecision:
    return decided_both_ways(activity, index, POLICY)


def _headline(decision: AttributionDecision) -> tuple[AttributionStatus, str | None, str | None, str | None]:
    return decision.status, decision.rep_id, decision.account_id, decision.deal_id


def test_the_merged_accounts_contacts_and_deals_are_the_survivors_whenever_the_merge_is_learnt() -> None:
    for merge_first in (True, False):
        index = _index(merge_first)
        assert index.contacts["con-x"].account_id == "acc-1"
        assert index.deals["deal-2"].account_id == "acc-1"
        assert {a: d for a, d in index.deal_ids_by_account.items() if d} == {"acc-1": {"deal-1", "deal-2"}}
        assert index.survivor("account", "acc-2") == "acc-1"
        assert index.inherited_domains() == ({"other.example": {"acc-1"}}, {"acc-1": ("other.example",)})
        assert index.account("acc-1") == Account("acc-1", ("buyer.example", "other.example"))
        assert index.account("acc-3") == Account("acc-3", ("shared.example",))


def test_mail_at_the_merged_accounts_domain_goes_to_the_survivor_and_its_open_deal() -> None:
    """An address nobody lists at other.example: acc-1's, on deal-2, the only open deal acc-1
    now holds (its own deal-1 was won in March)."""
    for merge_first in (True, False):
        index = _index(merge_first)
        decided = _decide(email_in("new.buyer@other.example", "bo@seller.example"), index)
        assert _headline(decided) == (AttributionStatus.ATTRIBUTED, BO, "acc-1", "deal-2")
        from_contact = _decide(email_out("bo@seller.example", "x@other.example"), index)
        assert _headline(from_contact) == (AttributionStatus.ATTRIBUTED, BO, "acc-1", "deal-2")


def test_a_domain_a_live_account_holds_itself_stays_that_accounts() -> None:
    index = _index(merge_first=True)
    decided = _decide(email_in("someone@shared.example", "ana@seller.example"), index)
    assert decided.account_id == "acc-3"
    assert decided.deal_id is None


def test_an_explicit_reference_to_the_merged_account_names_the_survivor() -> None:
    index = _index(merge_first=False)
    crm = CrmReferences(account_id="acc-2")
    decided = _decide(email_out("bo@seller.example", "y@unknown.example", crm=crm), index)
    assert _headline(decided) == (AttributionStatus.ATTRIBUTED, BO, "acc-1", "deal-2")


def test_a_merge_chain_ending_in_a_deletion_leaves_the_domains_to_nobody() -> None:
    index = _index(merge_first=True, survivor=None)
    assert index.contacts["con-x"].account_id == "acc-2"
    assert index.deals["deal-2"].account_id == "acc-2"
    assert index.inherited_domains() == ({}, {})
    decided = _decide(email_in("new.buyer@other.example", "bo@seller.example"), index)
    assert _headline(decided) == (AttributionStatus.UNMATCHED, BO, None, None)
