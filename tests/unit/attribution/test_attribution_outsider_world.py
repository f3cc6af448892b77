"""Two decisions an outsider's labelled world (``bench.outsider_world``) found wrong against what a
careful human gives from the same data (rules 2026.12.39):

* an open deal against a deal of the same people and owner closed a few days before the activity:
  the closed deal's recency (younger than the open one) ate into the proximity weight the open deal
  leads by, and the call stayed a close call; a deal closed at the activity time is no recent
  business, so its recency is 0, as a deal not yet created has;
* mail to someone holding no role, copying a colleague who holds one on another rep's deal, while
  the sender's own deal is open at the account: the copied colleague alone "settled" the close
  call for the other rep's deal (everyone on the runner-up, nobody, is on it); those copied are kept
  informed, mail is about whom it is from or to, so only they settle it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityIngestedV1, ActivityKind, Direction, ParticipantRole
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import AttributionSnapshot, Deal, TenantAttributionPolicy

from .builders import ANA, BO, activity, snapshot

FROM, TO, CC = ParticipantRole.FROM, ParticipantRole.TO, ParticipantRole.CC


def _deals(*deals: Deal) -> AttributionSnapshot:
    return replace(snapshot(), deals=deals)


def _mail(at: datetime, *people: tuple[str, ParticipantRole]) -> ActivityIngestedV1:
    return activity(ActivityKind.EMAIL, Direction.OUTBOUND, (("ana@seller.example", FROM), *people), at=at)


def test_an_open_deal_leads_a_deal_of_the_same_people_closed_days_before() -> None:
    """Amy is champion of Ana's Platform deal (open since March) and of her Services deal (created
    in June, won on 1 September). Ana's mail to Amy on 10 September is Platform's."""
    platform = Deal("deal-platform", "acc-acme", ANA, "proposal", False, False,
                    datetime(2026, 3, 1, tzinfo=UTC), None, (("con-amy", "champion"),))  # fmt: skip
    services = Deal("deal-services", "acc-acme", ANA, "closed_won", True, True,
                    datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC),
                    (("con-amy", "champion"),))  # fmt: skip
    mail = _mail(datetime(2026, 9, 10, 15, tzinfo=UTC), ("amy@acme.com", TO))

    decision = attribute_activity(mail, _deals(platform, services), TenantAttributionPolicy())

    assert (decision.status, decision.deal_id, decision.secondary_deal_ids) == (
        AttributionStatus.ATTRIBUTED,
        "deal-platform",
        (),
    )
    ranked = {r.deal_id: r.score for r in decision.runners_up}
    assert ranked == {"deal-services": 0.845}


def test_a_colleague_copied_does_not_settle_a_close_call_against_the_senders_own_deal() -> None:
    """Ana owns Acme's Platform deal (no roles); Bo owns its Services deal, Amy its champion. Ana
    writes to Ann (no role) and copies Amy: Ana's deal or Amy's, nothing tells."""
    created = datetime(2026, 9, 1, tzinfo=UTC)
    platform = Deal("deal-platform", "acc-acme", ANA, "proposal", False, False, created, None, ())
    services = Deal("deal-services", "acc-acme", BO, "proposal", False, False, created, None,
                    (("con-amy", "champion"),))  # fmt: skip
    mail = _mail(datetime(2026, 10, 1, 15, tzinfo=UTC), ("ann@acme.com", TO), ("amy@acme.com", CC))

    decision = attribute_activity(mail, _deals(platform, services), TenantAttributionPolicy())

    assert decision.status is AttributionStatus.AMBIGUOUS
    assert {decision.deal_id, *decision.secondary_deal_ids} == {"deal-platform", "deal-services"}


def test_the_one_written_to_still_settles_it() -> None:
    """Amy, written to, is on Services; Ann, copied, on neither: everyone on the runner-up (nobody)
    is on Services, and Amy more: Services, as under 2026.12.17."""
    created = datetime(2026, 9, 1, tzinfo=UTC)
    platform = Deal("deal-platform", "acc-acme", ANA, "proposal", False, False, created, None, ())
    services = Deal("deal-services", "acc-acme", BO, "proposal", False, False, created, None,
                    (("con-amy", "champion"),))  # fmt: skip
    mail = _mail(datetime(2026, 10, 1, 15, tzinfo=UTC), ("amy@acme.com", TO), ("ann@acme.com", CC))

    decision = attribute_activity(mail, _deals(platform, services), TenantAttributionPolicy())

    assert (decision.status, decision.deal_id) == (AttributionStatus.ATTRIBUTED, "deal-services")


def test_a_colleague_copied_does_not_outweigh_a_subject_naming_another_deal() -> None:
    """Ana owns Acme's Payroll and Billing deals; Vera is Billing's champion, Ann on neither. Ana
    writes "Payroll - pricing" to Ann and copies Vera: the subject names Payroll, the copied
    colleague is on Billing. A copied contact counts half for the deal's coverage as for its role,
    so Billing no longer leads by the margin: a close call, both surfaced (before: Billing credited,
    its copied champion's role and full coverage outweighing the subject)."""
    created = datetime(2026, 9, 1, tzinfo=UTC)
    payroll = Deal("deal-payroll", "acc-acme", ANA, "proposal", False, False, created, None, (),
                   name="Acme - Payroll")  # fmt: skip
    billing = Deal("deal-billing", "acc-acme", ANA, "proposal", False, False, created, None,
                   (("con-amy", "champion"),), name="Acme - Billing")  # fmt: skip
    mail = _mail(datetime(2026, 10, 1, 15, tzinfo=UTC), ("ann@acme.com", TO), ("amy@acme.com", CC))
    mail = mail.model_copy(update={"subject": "Payroll - pricing"})

    decision = attribute_activity(mail, _deals(payroll, billing), TenantAttributionPolicy())

    assert decision.status is AttributionStatus.AMBIGUOUS
    assert {decision.deal_id, *decision.secondary_deal_ids} == {"deal-payroll", "deal-billing"}


def test_a_subject_naming_another_deal_outright_makes_a_role_a_close_call() -> None:
    """Ana owns Acme's Payroll and Billing deals; Amy is Billing's champion. Ana writes "Payroll -
    pricing" to Amy. The role says Billing (0.40 outweighs the subject's 0.15), the subject names
    Payroll outright: a person reads the subject, the rules cannot tell which is stale, so it is a
    close call with both surfaced, Billing first (before: Billing credited). A subject naming the
    deal the role is on, or naming none, changes nothing."""
    created = datetime(2026, 9, 1, tzinfo=UTC)
    payroll = Deal("deal-payroll", "acc-acme", ANA, "proposal", False, False, created, None, (),
                   name="Acme - Payroll")  # fmt: skip
    billing = Deal("deal-billing", "acc-acme", ANA, "proposal", False, False, created, None,
                   (("con-amy", "champion"),), name="Acme - Billing")  # fmt: skip
    world = _deals(payroll, billing)
    mail = _mail(datetime(2026, 10, 1, 15, tzinfo=UTC), ("amy@acme.com", TO))

    def decide(subject: str) -> tuple[AttributionStatus, str | None, tuple[str, ...]]:
        d = attribute_activity(mail.model_copy(update={"subject": subject}), world, TenantAttributionPolicy())
        return d.status, d.deal_id, d.secondary_deal_ids

    assert decide("Payroll - pricing") == (AttributionStatus.AMBIGUOUS, "deal-billing", ("deal-payroll",))
    assert decide("Billing - pricing") == (AttributionStatus.ATTRIBUTED, "deal-billing", ())
    assert decide("Quick question") == (AttributionStatus.ATTRIBUTED, "deal-billing", ())


def test_the_people_do_not_settle_a_close_call_the_subject_makes() -> None:
    """Ana owns Acme's Payroll deal (no roles), Bo its Billing deal (Amy champion). Ana's meeting
    "Payroll - pricing" with Amy, Ann (on no deal), Zed and Yo (unknown): Billing leads by less than the
    margin, and everyone on Payroll (nobody) is on Billing and
    Amy more, which settled the close call for Billing; the subject naming Payroll outright keeps it
    a close call, Billing first, Payroll beside it."""
    created = datetime(2026, 9, 1, tzinfo=UTC)
    payroll = Deal("deal-payroll", "acc-acme", ANA, "proposal", False, False, created, None, (),
                   name="Acme - Payroll")  # fmt: skip
    billing = Deal("deal-billing", "acc-acme", BO, "proposal", False, False, created, None,
                   (("con-amy", "champion"),), name="Acme - Billing")  # fmt: skip
    people = (("ana@seller.example", ParticipantRole.ORGANIZER), ("amy@acme.com", ParticipantRole.ATTENDEE),
              ("ann@acme.com", ParticipantRole.ATTENDEE), ("zed@acme.com", ParticipantRole.ATTENDEE),
              ("yo@acme.com", ParticipantRole.ATTENDEE))  # fmt: skip
    meeting = activity(
        ActivityKind.MEETING, Direction.OUTBOUND, people, at=datetime(2026, 10, 1, 15, tzinfo=UTC)
    )
    meeting = meeting.model_copy(update={"subject": "Payroll - pricing"})

    decision = attribute_activity(meeting, _deals(payroll, billing), TenantAttributionPolicy())

    assert (decision.status, decision.deal_id, decision.secondary_deal_ids) == (
        AttributionStatus.AMBIGUOUS,
        "deal-billing",
        ("deal-payroll",),
    )
