"""A partner's deal yields to its customer's (rules 2026.12.28).

Ana sells to Hooli (Hal, champion of ``deal-hooli``) through Channel (Cat, on the reseller
agreement ``deal-channel``), both deals hers. With Channel untyped, a meeting with Hal and Cat is
a close call; typed ``partner`` in the CRM, Channel's deal yields to Hooli's and stays beside it as
a secondary deal. The subject naming the partner's deal, or only the partner's people there, keep
the partner's deal where the signals put it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityIngestedV1, ActivityKind, Direction, ParticipantRole
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.matching import RULE_VERSION, attribute_activity
from services.attribution.domain.reference import (
    Account,
    AmbiguityPolicy,
    AttributionSnapshot,
    Contact,
    Deal,
    Rep,
    TenantAttributionPolicy,
)

from .builders import WHEN, activity

ANA = "ana@seller.example"
HAL, CAT = "hal@hooli.example", "cat@channel.example"
CREATED = datetime(2026, 3, 1, tzinfo=UTC)
HOOLI = Deal(
    "deal-hooli",
    "acc-hooli",
    "rep-ana",
    "proposal",
    False,
    False,
    CREATED,
    None,
    (("con-hal", "champion"),),
    name="Hooli - Mobile rollout",
    account_name="Hooli",
)
CHANNEL = Deal(
    "deal-channel", "acc-channel", "rep-ana", "proposal", False, False, CREATED, None, (("con-cat", "champion"),),
    name="Channel - Reseller agreement", account_name="Channel",
)  # fmt: skip


def _snapshot(
    partner: str | None = "partner", customer: str | None = None, *deals: Deal
) -> AttributionSnapshot:
    return AttributionSnapshot(
        internal_domains=frozenset({"seller.example"}),
        reps=(Rep("rep-ana", "Ana", (ANA,)),),
        accounts=(Account("acc-hooli", ("hooli.example",)), Account("acc-channel", ("channel.example",))),
        contacts=(
            Contact("con-hal", (HAL,), (), "acc-hooli"),
            Contact("con-cat", (CAT,), (), "acc-channel"),
        ),
        deals=(
            replace(HOOLI, account_relationship=customer),
            replace(CHANNEL, account_relationship=partner),
            *deals,
        ),
    )


def _meeting(*attendees: str, subject: str = "Weekly sync") -> ActivityIngestedV1:
    parts = ((ANA, ParticipantRole.ORGANIZER), *((a, ParticipantRole.ATTENDEE) for a in attendees))
    return activity(ActivityKind.MEETING, Direction.OUTBOUND, parts, at=WHEN).model_copy(
        update={"subject": subject}
    )


def _email(to: str, cc: str) -> ActivityIngestedV1:
    parts = ((ANA, ParticipantRole.FROM), (to, ParticipantRole.TO), (cc, ParticipantRole.CC))
    return activity(ActivityKind.EMAIL, Direction.OUTBOUND, parts, at=WHEN).model_copy(
        update={"subject": "Next steps"}
    )


def _found(decision: AttributionDecision) -> tuple[str, str | None, tuple[str, ...], str]:
    return decision.status.value, decision.deal_id, decision.secondary_deal_ids, decision.rule_path


def test_an_untyped_partner_leaves_the_customer_and_partner_meeting_a_close_call() -> None:
    decision = attribute_activity(_meeting(HAL, CAT), _snapshot(partner=None), TenantAttributionPolicy())

    assert decision.status is AttributionStatus.AMBIGUOUS
    assert {decision.deal_id, *decision.secondary_deal_ids} == {"deal-hooli", "deal-channel"}
    assert "yielded" not in decision.explanation


def test_a_partner_typed_account_yields_its_deal_to_the_customers_and_stays_a_secondary() -> None:
    decision = attribute_activity(_meeting(HAL, CAT), _snapshot(), TenantAttributionPolicy())

    assert _found(decision) == ("attributed", "deal-hooli", ("deal-channel",), "partner_yields")
    # A close call settled by the rule: the evidence strength (Hal's email, 0.95) at half margin.
    assert decision.confidence == 0.475
    scores = {r.deal_id: r.score for r in decision.runners_up}
    assert decision.explanation["yielded"] == [{"deal_id": "deal-channel", "score": scores["deal-channel"]}]
    assert decision.explanation["rule_version"] == RULE_VERSION


def test_a_customer_typed_customer_or_prospect_is_the_same() -> None:
    for customer in ("customer", "prospect", "other"):
        decision = attribute_activity(
            _meeting(HAL, CAT), _snapshot(customer=customer), TenantAttributionPolicy()
        )
        assert _found(decision) == ("attributed", "deal-hooli", ("deal-channel",), "partner_yields"), customer


def test_mail_to_the_partner_with_the_customer_copied_is_the_customers_deal() -> None:
    # Cat addressed leads by 0.2 on her role (Hal's, copied, counts half): the partner still yields.
    untyped = attribute_activity(_email(CAT, HAL), _snapshot(partner=None), TenantAttributionPolicy())
    typed = attribute_activity(_email(CAT, HAL), _snapshot(), TenantAttributionPolicy())

    assert (untyped.status, untyped.deal_id) == (AttributionStatus.ATTRIBUTED, "deal-channel")
    assert _found(typed) == ("attributed", "deal-hooli", ("deal-channel",), "partner_yields")


def test_a_partner_deal_already_behind_by_the_margin_is_not_listed() -> None:
    decision = attribute_activity(_email(HAL, CAT), _snapshot(), TenantAttributionPolicy())

    assert _found(decision) == ("attributed", "deal-hooli", (), "contact_role")
    assert "yielded" not in decision.explanation


def test_a_subject_naming_the_partners_deal_keeps_it() -> None:
    decision = attribute_activity(
        _meeting(HAL, CAT, subject="Reseller agreement review"), _snapshot(), TenantAttributionPolicy()
    )

    assert _found(decision) == ("attributed", "deal-channel", (), "subject")


def test_only_the_partners_people_keep_the_partners_deal() -> None:
    # Cat is on Hooli's deal too (she resells it); no one from Hooli takes part.
    hooli = replace(HOOLI, contacts=(("con-hal", "champion"), ("con-cat", "influencer")))
    snapshot = replace(_snapshot(), deals=(hooli, replace(CHANNEL, account_relationship="partner")))

    decision = attribute_activity(_meeting(CAT), snapshot, TenantAttributionPolicy())

    # Her role on each, her account's deal ahead by the account match (0.095): a close call.
    assert _found(decision) == ("ambiguous", "deal-channel", ("deal-hooli",), "account_match")
    assert "yielded" not in decision.explanation


def test_two_partner_deals_and_none_of_a_customer_are_ranked_as_usual() -> None:
    other = replace(CHANNEL, id="deal-channel-2", name="Channel - Training", account_relationship="partner")
    snapshot = _snapshot("partner", "partner", other)

    decision = attribute_activity(_meeting(HAL, CAT), snapshot, TenantAttributionPolicy())

    assert decision.status is AttributionStatus.AMBIGUOUS
    assert "yielded" not in decision.explanation


def test_the_customers_own_deals_stay_a_close_call_with_the_partners_listed_too() -> None:
    # Hal is on two Hooli deals of Ana's: nothing tells those apart, a close call between them.
    second = replace(HOOLI, id="deal-hooli-2", name="Hooli - Analytics")

    decision = attribute_activity(
        _meeting(HAL, CAT), _snapshot("partner", None, second), TenantAttributionPolicy()
    )

    assert _found(decision) == ("ambiguous", "deal-hooli", ("deal-hooli-2", "deal-channel"), "tie_break")
    assert decision.explanation["steps"] == [
        "a partner's deals yield to the customer's (its people are there for it): deal-channel",
        "2 deals within 0.1 of each other",
    ]


def test_unique_only_keeps_the_customers_deal_and_lists_no_secondary() -> None:
    policy = TenantAttributionPolicy(ambiguity_policy=AmbiguityPolicy.UNIQUE_ONLY)

    decision = attribute_activity(_meeting(HAL, CAT), _snapshot(), policy)

    assert _found(decision) == ("attributed", "deal-hooli", (), "partner_yields")
