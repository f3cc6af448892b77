"""A participant who declined a meeting did not take part in it.

A rep who declined is not credited and does not count as the deal's owner taking part; a buyer
who declined is no evidence for an account or deal; a meeting whose every external invitee
declined is an internal meeting. Accepted, tentative and unanswered invitees count as before, so
an activity without response statuses is decided exactly as it was.
"""

from __future__ import annotations

import pytest

from libs.common.contracts.activities import (
    ActivityIngestedV1,
    ActivityKind,
    Direction,
    ParticipantRole,
    ResponseStatus,
)
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import TenantAttributionPolicy

from .builders import ANA, BO, activity, snapshot

POLICY = TenantAttributionPolicy()
ACCEPTED, DECLINED, TENTATIVE, NEEDS_ACTION = (
    ResponseStatus.ACCEPTED,
    ResponseStatus.DECLINED,
    ResponseStatus.TENTATIVE,
    ResponseStatus.NEEDS_ACTION,
)
#: amy holds a role on deal-acme-new (Ana's), al on deal-acme-exp (Bo's).
ANA_WITH_AMY_AND_AL = (
    ("ana@seller.example", ParticipantRole.ORGANIZER),
    ("amy@acme.com", ParticipantRole.ATTENDEE),
    ("al@acme.com", ParticipantRole.ATTENDEE),
)
AMY_WITH_ANA_AND_BO = (
    ("amy@acme.com", ParticipantRole.ORGANIZER),
    ("ana@seller.example", ParticipantRole.ATTENDEE),
    ("bo@seller.example", ParticipantRole.ATTENDEE),
)


def meeting(
    parts: tuple[tuple[str, ParticipantRole], ...], statuses: tuple[ResponseStatus | None, ...]
) -> ActivityIngestedV1:
    base = activity(ActivityKind.MEETING, Direction.OUTBOUND, parts)
    participants = tuple(
        p.model_copy(update={"response_status": status})
        for p, status in zip(base.participants, statuses, strict=True)
    )
    return base.model_copy(update={"participants": participants})


def test_a_rep_who_declined_is_not_credited_nor_taking_part_as_the_deal_owner() -> None:
    both = attribute_activity(meeting(AMY_WITH_ANA_AND_BO, (None, None, None)), snapshot(), POLICY)
    assert (both.rep_id, both.explanation["rep"]["via"], both.deal_id) == (
        ANA,
        "attendee:deal_owner",
        "deal-acme-new",
    )
    assert both.explanation["steps"] == ["deal deal-acme-new leads by 0.5568"]

    decision = attribute_activity(meeting(AMY_WITH_ANA_AND_BO, (None, DECLINED, None)), snapshot(), POLICY)
    assert (decision.status, decision.rep_id, decision.team_id) == (
        AttributionStatus.ATTRIBUTED,
        BO,
        "team-east",
    )
    assert decision.explanation["rep"]["candidates"] == [BO]
    # Ana owns the deal but was not there: owner_participates is 0, the lead 0.2 smaller.
    assert decision.deal_id == "deal-acme-new"
    signals = {row["signal"]: row["value"] for row in decision.explanation["signals"]}
    assert signals["owner_participates"] == 0.0
    assert decision.explanation["declined"] == [1]
    assert decision.explanation["steps"] == [
        "1 declined the invitation: neither credited nor evidence",
        "deal deal-acme-new leads by 0.3568",
    ]
    # A declined rep is still the seller's side, not an external participant.
    assert (decision.external_participants, decision.external_contact_ids) == (1, ("con-amy",))


def test_a_buyer_who_declined_is_no_evidence_for_a_deal() -> None:
    both = attribute_activity(meeting(ANA_WITH_AMY_AND_AL, (None, None, None)), snapshot(), POLICY)
    assert (both.deal_id, both.confidence, both.external_participants) == ("deal-acme-new", 0.8024, 2)

    decision = attribute_activity(
        meeting(ANA_WITH_AMY_AND_AL, (ACCEPTED, DECLINED, ACCEPTED)), snapshot(), POLICY
    )
    assert (decision.status, decision.deal_id, decision.rep_id) == (
        AttributionStatus.ATTRIBUTED,
        "deal-acme-exp",
        ANA,
    )
    assert (decision.confidence, decision.rule_path) == (0.95, "contact_role")
    assert (decision.external_participants, decision.external_contact_ids) == (1, ("con-al",))
    assert [c["contact_id"] for c in decision.explanation["contacts"]] == ["con-al"]


def test_a_meeting_every_external_invitee_declined_is_internal() -> None:
    decision = attribute_activity(
        meeting(ANA_WITH_AMY_AND_AL, (ACCEPTED, DECLINED, DECLINED)), snapshot(), POLICY
    )
    assert (decision.status, decision.rule_path, decision.rep_id, decision.team_id) == (
        AttributionStatus.INTERNAL,
        "internal",
        ANA,
        "team-east",
    )
    assert (decision.account_id, decision.deal_id, decision.confidence) == (None, None, 1.0)
    assert (decision.external_participants, decision.external_contact_ids) == (0, ())
    assert decision.explanation["steps"] == [
        "2 declined the invitation: neither credited nor evidence",
        "every participant who did not decline is internal: an internal meeting",
    ]


@pytest.mark.parametrize("status", [None, ACCEPTED, TENTATIVE, NEEDS_ACTION])
@pytest.mark.parametrize(
    "parts", [ANA_WITH_AMY_AND_AL, AMY_WITH_ANA_AND_BO], ids=["ana-organizes", "amy-organizes"]
)
def test_any_other_answer_decides_as_no_answer_at_all(
    parts: tuple[tuple[str, ParticipantRole], ...], status: ResponseStatus | None
) -> None:
    plain = attribute_activity(meeting(parts, (None, None, None)), snapshot(), POLICY)
    answered = attribute_activity(meeting(parts, (status, status, status)), snapshot(), POLICY)
    assert answered == plain
    assert "declined" not in answered.explanation
