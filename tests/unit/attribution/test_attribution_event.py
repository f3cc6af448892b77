"""The attributed event is built without validating again: its bytes equal the validated model's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.common.contracts.activities import ActivityIngestedV1, CrmReferences
from libs.common.contracts.attribution import ActivityAttributedV1, AttributionStatus
from libs.common.contracts.envelope import encode_body
from services.attribution.domain.decision import AttributionDecision
from services.attribution.handlers import activity_facts, attributed_event
from tests.unit.attribution.builders import email_in, email_out

_DECIDED = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def _validated(
    activity: ActivityIngestedV1, decision: AttributionDecision, version: int, decided_at: datetime
) -> ActivityAttributedV1:
    """The event as it was built before: every field through pydantic's validation."""
    return ActivityAttributedV1(
        tenant_id=activity.tenant_id,
        activity_id=activity.activity_id,
        version=version,
        status=decision.status,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        account_id=decision.account_id,
        deal_id=decision.deal_id,
        secondary_deal_ids=decision.secondary_deal_ids,
        confidence=max(0.0, min(1.0, decision.confidence)),
        facts=activity_facts(activity, decision.external_participants, decision.external_contact_ids),
        decided_at=decided_at,
        explanation={"rule_path": decision.rule_path, "ingested_at": activity.ingested_at.isoformat()},
    )


_ACTIVITIES = [
    email_out("ann@acme.example", "bob@buyer.example"),
    email_in("bob@buyer.example", "ann@acme.example", automated=True),
    email_out(
        "ann@acme.example",
        "bob@buyer.example",
        crm=CrmReferences(deal_id="deal-9"),
        at=datetime(2026, 10, 1, 23, 59, 59, tzinfo=UTC) + timedelta(microseconds=7),
    ),
]
_DECISIONS = [
    AttributionDecision(AttributionStatus.ATTRIBUTED, "rep-1", "team-a", "acc-1", "deal-1", 0.9, "contact"),
    AttributionDecision(
        AttributionStatus.AMBIGUOUS,
        "rep-1",
        None,
        "acc-1",
        "deal-1",
        0.55,
        "domain",
        secondary_deal_ids=("deal-2", "deal-3"),
        external_participants=2,
        external_contact_ids=("con-1", "con-2"),
    ),
    AttributionDecision(AttributionStatus.UNMATCHED, None, None, None, None, 0.0, "none"),
    AttributionDecision(AttributionStatus.ACCOUNT_ONLY, "rep-2", "team-b", "acc-2", None, 1.7, "override"),
    AttributionDecision(AttributionStatus.EXCLUDED, None, None, None, None, -0.2, "excluded"),
    AttributionDecision(AttributionStatus.INTERNAL, "rep-1", "team-a", None, None, 1, "internal"),
]


@pytest.mark.parametrize("activity", _ACTIVITIES)
@pytest.mark.parametrize("decision", _DECISIONS)
def test_constructed_event_bytes_equal_the_validated_event(
    activity: ActivityIngestedV1, decision: AttributionDecision
) -> None:
    built = attributed_event(activity, decision, 3, _DECIDED)
    validated = _validated(activity, decision, 3, _DECIDED)
    assert encode_body(built) == encode_body(validated)
    assert built == validated
    # And what a consumer decodes from it is the same event.
    assert ActivityAttributedV1.model_validate_json(encode_body(built)) == validated
