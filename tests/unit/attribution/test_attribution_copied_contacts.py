"""A contact only copied on an email (``cc``, ``bcc``) is weaker evidence for her deal than one the
email is sent to or by (rules 2026.12.12)."""

from __future__ import annotations

from libs.common.contracts.activities import ActivityKind, Direction, ParticipantRole
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import TenantAttributionPolicy

from .builders import activity, snapshot

CY = ("cy@seller.example", ParticipantRole.FROM)


def _decide(
    kind: ActivityKind, *people: tuple[str, ParticipantRole]
) -> tuple[str, str | None, tuple[str, ...]]:
    decision = attribute_activity(
        activity(kind, Direction.OUTBOUND, people), snapshot(), TenantAttributionPolicy()
    )
    return decision.status.value, decision.deal_id, decision.secondary_deal_ids


def test_the_addressed_contacts_deal_leads_the_copied_contacts() -> None:
    # Cy owns neither Acme deal; amy is on deal-acme-new, al on deal-acme-exp.
    to_amy = _decide(
        ActivityKind.EMAIL, CY, ("amy@acme.com", ParticipantRole.TO), ("al@acme.com", ParticipantRole.CC)
    )
    to_al = _decide(
        ActivityKind.EMAIL, CY, ("al@acme.com", ParticipantRole.TO), ("amy@acme.com", ParticipantRole.BCC)
    )

    assert to_amy == (AttributionStatus.ATTRIBUTED.value, "deal-acme-new", ())
    assert to_al == (AttributionStatus.ATTRIBUTED.value, "deal-acme-exp", ())


def test_both_addressed_or_both_in_a_meeting_stay_a_close_call() -> None:
    both = _decide(
        ActivityKind.EMAIL, CY, ("amy@acme.com", ParticipantRole.TO), ("al@acme.com", ParticipantRole.TO)
    )
    meeting = _decide(
        ActivityKind.MEETING,
        ("cy@seller.example", ParticipantRole.ORGANIZER),
        ("amy@acme.com", ParticipantRole.ATTENDEE),
        ("al@acme.com", ParticipantRole.ATTENDEE),
    )

    assert both == meeting == (AttributionStatus.AMBIGUOUS.value, "deal-acme-new", ("deal-acme-exp",))


def test_a_copied_contact_alone_still_finds_her_deal() -> None:
    # An address the CRM does not know is addressed; the champion is copied.
    decided = _decide(
        ActivityKind.EMAIL, CY, ("newbie@acme.com", ParticipantRole.TO), ("amy@acme.com", ParticipantRole.CC)
    )

    assert decided == (AttributionStatus.ATTRIBUTED.value, "deal-acme-new", ())
