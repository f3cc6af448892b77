"""A close call settled by who took part (rules 2026.12.17): everyone holding a role on the runner-up
holds one on the best deal, and someone more does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityIngestedV1, ActivityKind, Direction, ParticipantRole
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import AttributionSnapshot, Deal, TenantAttributionPolicy

from .builders import ANA, activity, snapshot

ORGANIZER, ATTENDEE = ParticipantRole.ORGANIZER, ParticipantRole.ATTENDEE


def _world() -> AttributionSnapshot:
    """The customer's deal lists its buyer (amy) and the reseller's person (al, an influencer);
    the reseller's own deal lists al. Both are Ana's, both open."""
    created = datetime(2026, 3, 1, tzinfo=UTC)
    customer = Deal("deal-cust", "acc-acme", ANA, "proposal", False, False, created, None,
                    (("con-amy", "champion"), ("con-al", "influencer")))  # fmt: skip
    reseller = Deal("deal-resl", "acc-acme", ANA, "proposal", False, False, created, None,
                    (("con-al", "champion"),))  # fmt: skip
    return replace(snapshot(), deals=(customer, reseller))


def _meeting(*attendees: str) -> ActivityIngestedV1:
    people = (("ana@seller.example", ORGANIZER), *((a, ATTENDEE) for a in attendees))
    return activity(ActivityKind.MEETING, Direction.OUTBOUND, people)


def test_everyone_in_the_meeting_on_one_deal_settles_it() -> None:
    decision = attribute_activity(
        _meeting("amy@acme.com", "al@acme.com"), _world(), TenantAttributionPolicy()
    )

    assert (decision.status, decision.deal_id, decision.secondary_deal_ids, decision.rule_path) == (
        AttributionStatus.ATTRIBUTED,
        "deal-cust",
        (),
        "contact_coverage",
    )
    assert "the people settle it" in " ".join(decision.explanation["steps"])


def test_the_same_people_on_both_deals_stay_a_close_call() -> None:
    alone = attribute_activity(_meeting("al@acme.com"), _world(), TenantAttributionPolicy())
    # An unknown colleague at the domain backs neither deal: still al's two deals.
    with_newcomer = attribute_activity(
        _meeting("al@acme.com", "zed@acme.com"),
        _world(),
        TenantAttributionPolicy(),
    )

    assert alone.status is AttributionStatus.AMBIGUOUS
    assert set((alone.deal_id, *alone.secondary_deal_ids)) == {"deal-cust", "deal-resl"}
    assert with_newcomer.status is AttributionStatus.AMBIGUOUS
