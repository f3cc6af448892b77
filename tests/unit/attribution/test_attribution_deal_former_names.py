"""A deal's name is read as it was when the activity happened (``ref_deal_names``, rules
2026.12.42), and a deal merged into it lends it the names it had then (rules 2026.12.44).

Acme's "Payroll Rollout" became "HR Suite" on November 1; Ana owns it and "Acme - Analytics",
the buyer's contact on both. Her October mail "Payroll Rollout kickoff" names the deal by its name
then, whenever it is decided again; her November mail "HR Suite demo" names it by its new one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.reference import (
    Account,
    Contact,
    Deal,
    DealFormerName,
    Rep,
    TenantAttributionPolicy,
    merged_names_at,
    name_at,
)
from services.attribution.domain.reference_index import (
    ReferenceIndex,
)

from .builders import decided_both_ways, email_out

SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 15, 10, 0, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
RENAMED = (DealFormerName("deal-pay", "Acme - Payroll Rollout", NOV_1),)


def test_the_name_at_a_time_is_the_one_before_the_earliest_rename_after_it() -> None:
    assert name_at("Acme - HR Suite", RENAMED, OCTOBER) == "Acme - Payroll Rollout"
    assert name_at("Acme - HR Suite", RENAMED, datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)) == (
        "Acme - Payroll Rollout"
    )
    assert name_at("Acme - HR Suite", RENAMED, NOV_1) == "Acme - HR Suite"
    assert name_at("Acme - HR Suite", RENAMED, NOVEMBER) == "Acme - HR Suite"
    twice = (*RENAMED, DealFormerName("deal-pay", "Acme - HR Suite", DEC_1))
    assert name_at("Acme - People Suite", twice, OCTOBER) == "Acme - Payroll Rollout"
    assert name_at("Acme - People Suite", twice, NOVEMBER) == "Acme - HR Suite"
    assert name_at("Acme - People Suite", twice, DEC_1) == "Acme - People Suite"
    assert name_at("Acme - HR Suite", (), OCTOBER) == "Acme - HR Suite"


def _index(renames: tuple[DealFormerName, ...]) -> ReferenceIndex:
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    index.put_rep(Rep("rep-ana", "Ana", ("ana@seller.example",)))
    index.put_account(Account("acc-1", ("acme.example",)))
    index.put_contact(Contact("con-1", ("cy@acme.example",), (), "acc-1"))
    for deal_id, name in (("deal-pay", "Acme - HR Suite"), ("deal-ana", "Acme - Analytics")):
        index.put_deal(
            Deal(
                deal_id,
                "acc-1",
                "rep-ana",
                "proposal",
                False,
                False,
                SEP_1,
                None,
                (("con-1", "champion"),),
                name,
            )
        )
    for renamed in renames:
        index.add_deal_former_name(renamed)
    return index


def _decide(index: ReferenceIndex, subject: str, at: datetime) -> AttributionDecision:
    activity = email_out("ana@seller.example", "cy@acme.example", at=at).model_copy(
        update={"subject": subject}
    )
    return decided_both_ways(activity, index, TenantAttributionPolicy())


def test_october_mail_naming_the_deal_by_its_name_then_is_the_deals() -> None:
    decided = _decide(_index(RENAMED), "Payroll Rollout kickoff", OCTOBER)
    assert (decided.status, decided.deal_id, decided.explanation["rule_path"]) == (
        AttributionStatus.ATTRIBUTED,
        "deal-pay",
        "subject",
    )
    assert decided.secondary_deal_ids == ()


def test_read_with_todays_name_alone_the_same_mail_is_a_close_call() -> None:
    decided = _decide(_index(()), "Payroll Rollout kickoff", OCTOBER)
    assert decided.status is AttributionStatus.AMBIGUOUS


def test_mail_after_the_rename_names_it_by_its_new_name_not_its_old_one() -> None:
    decided = _decide(_index(RENAMED), "HR Suite demo", NOVEMBER)
    assert (decided.status, decided.deal_id, decided.explanation["rule_path"]) == (
        AttributionStatus.ATTRIBUTED,
        "deal-pay",
        "subject",
    )
    assert _decide(_index(RENAMED), "HR Suite demo", OCTOBER).status is AttributionStatus.AMBIGUOUS


#: "Acme - Payroll Rollout" (``deal-dup``), named "Acme - Payroll" until 1 October, merged into
#: "Acme - HR Suite" (``deal-pay``) on 1 November.
MERGED = (
    DealFormerName("deal-dup", "Acme - Payroll", datetime(2026, 10, 1, tzinfo=UTC)),
    DealFormerName("deal-dup", "Acme - Payroll Rollout", NOV_1),
)


def test_the_names_of_deals_merged_away_are_those_they_had_then_and_their_last_after_the_merge() -> None:
    assert merged_names_at(MERGED, SEP_1) == ("Acme - Payroll",)
    assert merged_names_at(MERGED, OCTOBER) == ("Acme - Payroll Rollout",)
    assert merged_names_at(MERGED, NOV_1) == ("Acme - Payroll Rollout",)
    assert merged_names_at(MERGED, DEC_1) == ("Acme - Payroll Rollout",)
    other = DealFormerName("deal-old", "Acme - Benefits", DEC_1)
    assert merged_names_at((*MERGED, other), OCTOBER) == ("Acme - Benefits", "Acme - Payroll Rollout")


def test_mail_naming_a_deal_merged_away_names_its_survivor_before_and_after_the_merge() -> None:
    index = _index(())
    for merged in MERGED:
        index.add_deal_merged_name("deal-pay", merged)
    decided = _decide(index, "Payroll Rollout kickoff", OCTOBER)
    assert (decided.status, decided.deal_id, decided.explanation["rule_path"]) == (
        AttributionStatus.ATTRIBUTED,
        "deal-pay",
        "subject",
    )
    # Its own name still names it; after the merge, the merged deal's last name names it too
    # (rules 2026.12.45), its earlier one does not.
    assert _decide(index, "HR Suite demo", OCTOBER).deal_id == "deal-pay"
    after = _decide(index, "Payroll Rollout kickoff", NOVEMBER)
    assert (after.status, after.deal_id) == (AttributionStatus.ATTRIBUTED, "deal-pay")
    assert _decide(_index(()), "Payroll Rollout kickoff", OCTOBER).status is AttributionStatus.AMBIGUOUS
