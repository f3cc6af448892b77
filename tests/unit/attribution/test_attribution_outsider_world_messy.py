"""A decision the messy outsider world (``bench.outsider_world_messy``) found wrong against what a
careful human gives from the same data (rules 2026.12.41): a subject naming one candidate alone, by
a word of its name no other candidate's holds ("Rollout plan" beside ``Acme - Payroll Rollout`` and
``Acme - Analytics``), named it by its share of the words (1/2, worth 0.075): a close call with the
deal the subject says nothing of, where a reader has no doubt."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityKind, Direction, ParticipantRole
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import Deal, TenantAttributionPolicy

from .builders import ANA, activity, snapshot


def _deal(deal_id: str, name: str) -> Deal:
    return Deal(deal_id, "acc-acme", ANA, "proposal", False, False, datetime(2026, 3, 1, tzinfo=UTC), None,
                (("con-amy", "champion"),), name=name, account_name="Acme")  # fmt: skip


def test_a_subject_naming_one_deal_alone_by_part_of_its_name_names_it() -> None:
    """Amy is champion of Ana's two Acme deals; Ana writes "Rollout plan" (her deal was renamed
    from "Payroll Pilot" to "Payroll Rollout"): the rollout, credited; "Quick question" names
    neither: a close call, both surfaced."""
    deals = (_deal("deal-rollout", "Acme - Payroll Rollout"), _deal("deal-analytics", "Acme - Analytics"))
    world = replace(snapshot(), deals=deals)

    def mail(subject: str) -> tuple[AttributionStatus, set[str | None]]:
        sent = activity(ActivityKind.EMAIL, Direction.OUTBOUND,
                        (("ana@seller.example", ParticipantRole.FROM), ("amy@acme.com", ParticipantRole.TO)),
                        at=datetime(2026, 9, 10, 15, tzinfo=UTC))  # fmt: skip
        decision = attribute_activity(
            sent.model_copy(update={"subject": subject}), world, TenantAttributionPolicy()
        )
        return decision.status, {decision.deal_id, *decision.secondary_deal_ids}

    assert mail("Rollout plan") == (AttributionStatus.ATTRIBUTED, {"deal-rollout"})
    assert mail("Quick question") == (AttributionStatus.AMBIGUOUS, {"deal-rollout", "deal-analytics"})
