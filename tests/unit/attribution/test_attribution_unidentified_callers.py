"""A meeting someone dialled into from a number no contact lists (``unidentified_callers``).

Among colleagues and naming nothing, it is internal (parked until a contact lists the number); a
meeting the source files under a deal or account is decided by that reference, as it was before
callers were told apart, the caller outside (rules 2026.12.33; before, ``internal``, and
counted by metrics as an internal meeting).
"""

from __future__ import annotations

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    CrmReferences,
    Direction,
    ParticipantRole,
)
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import should_park
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import TenantAttributionPolicy

from .builders import ANA, activity, snapshot

POLICY = TenantAttributionPolicy()
UNLISTED = "+14155550199"
ANA_CY_AND_A_CALLER = (
    ("ana@seller.example", ParticipantRole.ORGANIZER),
    ("cy@seller.example", ParticipantRole.ATTENDEE),
    (UNLISTED, ParticipantRole.ATTENDEE),
)


def meeting(crm: CrmReferences | None = None) -> ActivityIngestedV1:
    return activity(ActivityKind.MEETING, Direction.OUTBOUND, ANA_CY_AND_A_CALLER, crm=crm)


def test_a_meeting_naming_nothing_with_an_unlisted_caller_is_internal_and_parked() -> None:
    decision = attribute_activity(meeting(), snapshot(), POLICY)
    assert (decision.status, decision.rule_path, decision.rep_id) == (
        AttributionStatus.INTERNAL,
        "internal",
        ANA,
    )
    assert decision.explanation["unidentified_callers"] == [2]
    assert should_park(decision, POLICY)


def test_a_meeting_naming_a_deal_is_that_deal_whoever_dialled_in() -> None:
    decision = attribute_activity(meeting(CrmReferences(deal_id="deal-globex")), snapshot(), POLICY)
    assert (decision.status, decision.rule_path, decision.deal_id, decision.account_id) == (
        AttributionStatus.ATTRIBUTED,
        "explicit_deal",
        "deal-globex",
        "acc-globex",
    )
    # Ana organizes: hers (Cy owns the deal and is there too).
    assert (decision.rep_id, decision.explanation["rep"]["via"], decision.confidence) == (
        ANA,
        "organizer",
        1.0,
    )
    # The caller is outside, as before callers were told apart: a customer meeting for metrics.
    assert (decision.external_participants, "unidentified_callers" in decision.explanation) == (1, False)
    assert decision.explanation["steps"] == ["explicit crm.deal_id deal-globex"]
    assert not should_park(decision, POLICY)


def test_a_meeting_naming_an_account_is_that_account_whoever_dialled_in() -> None:
    decision = attribute_activity(meeting(CrmReferences(account_id="acc-globex")), snapshot(), POLICY)
    assert (decision.status, decision.rule_path, decision.deal_id, decision.account_id) == (
        AttributionStatus.ATTRIBUTED,
        "owner_participates",
        "deal-globex",
        "acc-globex",
    )
    assert (decision.external_participants, "unidentified_callers" in decision.explanation) == (1, False)
    assert decision.explanation["steps"] == ["deal deal-globex leads by 0.424"]
    assert not should_park(decision, POLICY)
