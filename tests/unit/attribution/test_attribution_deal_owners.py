"""A deal's owner is read as it was when the activity happened (``ref_deal_owners``).

Deal-1 passed from Ana to Ben on November 5; Ben owns deal-2. Both deals hold the buyer's
contact. Ana's October mail to the buyer took part with deal-1's owner of that day, so it is
deal-1's whenever it is decided again; after the change both deals are Ben's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.matching import Signal
from services.attribution.domain.reference import (
    Account,
    Contact,
    Deal,
    DealOwnership,
    Rep,
    TenantAttributionPolicy,
    owner_at,
)
from services.attribution.domain.reference_index import (
    ReferenceIndex,
)

from .builders import decided_both_ways, email_out

ANA, BEN = "rep-ana", "rep-ben"
SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 15, 10, 0, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
HISTORY = (DealOwnership("deal-1", ANA, SEP_1), DealOwnership("deal-1", BEN, NOV_5))


def test_the_owner_at_a_time_is_the_latest_since_then_and_the_earliest_before_any() -> None:
    assert owner_at(HISTORY, datetime(2026, 8, 1, tzinfo=UTC)) == ANA
    assert owner_at(HISTORY, SEP_1) == ANA
    assert owner_at(HISTORY, OCTOBER) == ANA
    assert owner_at(HISTORY, datetime(2026, 11, 4, 23, 59, 59, tzinfo=UTC)) == ANA
    assert owner_at(HISTORY, NOV_5) == BEN
    assert owner_at(HISTORY, DECEMBER) == BEN
    back = (*HISTORY, DealOwnership("deal-1", ANA, datetime(2026, 12, 1, tzinfo=UTC)))
    assert owner_at(back, OCTOBER) == ANA
    assert owner_at(back, datetime(2026, 11, 20, tzinfo=UTC)) == BEN
    assert owner_at(back, DECEMBER) == ANA
    unowned = (DealOwnership("deal-1", None, SEP_1), DealOwnership("deal-1", BEN, NOV_5))
    assert owner_at(unowned, OCTOBER) is None
    assert owner_at(unowned, DECEMBER) == BEN
    assert owner_at(HISTORY[:1], DECEMBER) == ANA


def _deal(deal_id: str, owner: str) -> Deal:
    return Deal(deal_id, "acc-1", owner, "proposal", False, False, SEP_1, None, (("con-1", "champion"),))


def _index(history: tuple[DealOwnership, ...], aliases: dict[str, str] | None = None) -> ReferenceIndex:
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}), rep_aliases=aliases or {})
    index.put_rep(Rep(ANA, "Ana", ("ana@seller.example",)))
    index.put_rep(Rep(BEN, "Ben", ("ben@seller.example",)))
    index.put_account(Account("acc-1", ("buyer.example",)))
    index.put_contact(Contact("con-1", ("bo@buyer.example",), (), "acc-1"))
    index.put_deal(_deal("deal-1", BEN))
    index.put_deal(_deal("deal-2", BEN))
    for ownership in history:
        index.add_deal_owner(ownership)
    return index


def _decide(index: ReferenceIndex, sender: str, at: datetime) -> AttributionDecision:
    return decided_both_ways(email_out(sender, "bo@buyer.example", at=at), index, TenantAttributionPolicy())


def test_anas_october_mail_stays_on_the_deal_she_owned_then() -> None:
    decided = _decide(_index(HISTORY), "ana@seller.example", OCTOBER)
    assert (decided.status, decided.deal_id, decided.rep_id) == (AttributionStatus.ATTRIBUTED, "deal-1", ANA)
    assert decided.secondary_deal_ids == ()
    assert (decided.confidence, decided.explanation["rule_path"]) == (0.7917, "owner_participates")
    owner = next(s for s in decided.explanation["signals"] if s["signal"] == Signal.OWNER_PARTICIPATES)
    assert owner["value"] == 1.0
    assert decided.explanation["runners_up"] == [{"deal_id": "deal-2", "score": 0.7805}]


def test_read_with_todays_owners_the_same_mail_is_a_close_call() -> None:
    decided = _decide(_index(()), "ana@seller.example", OCTOBER)
    assert (decided.status, decided.deal_id, decided.rep_id) == (AttributionStatus.AMBIGUOUS, "deal-1", ANA)
    assert (decided.secondary_deal_ids, decided.confidence) == (("deal-2",), 0.475)


def test_after_the_change_both_deals_are_bens_and_anas_mail_is_a_close_call() -> None:
    decided = _decide(_index(HISTORY), "ana@seller.example", DECEMBER)
    assert (decided.status, decided.deal_id, decided.secondary_deal_ids) == (
        AttributionStatus.AMBIGUOUS,
        "deal-1",
        ("deal-2",),
    )


def test_an_owner_recorded_under_an_alias_is_its_person() -> None:
    index = _index((DealOwnership("deal-1", "rep-ana-old", SEP_1), HISTORY[1]), {"rep-ana-old": ANA})
    assert index.deal_owners["deal-1"][0].owner_rep_id == ANA
    decided = _decide(index, "ana@seller.example", OCTOBER)
    assert (decided.status, decided.deal_id, decided.rep_id) == (AttributionStatus.ATTRIBUTED, "deal-1", ANA)
