"""What attribution publishes, built as msgspec structs, against the contract's pydantic bytes.

Every version is built twice: by the consumer's ``attributed_event`` (the struct, encoded by
msgspec) and as the ``ActivityAttributedV1`` it replaced (validated by pydantic, encoded by
``encode_body``). The bytes must be the same, and the metrics consumer must read them back.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from msgspec.structs import replace

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.contracts.attribution import ActivityAttributedV1, ActivityFacts, AttributionStatus
from libs.common.contracts.attribution_fast import Attributed, decode_fast, encode_attributed
from libs.common.contracts.envelope import decode_body, encode_body
from services.attribution.adapters.repository import StoredAttribution
from services.attribution.domain.decision import AttributionDecision
from services.attribution.domain.reference import AmbiguityPolicy, TenantAttributionPolicy
from services.attribution.domain.reference_index import attribute_from_index
from services.attribution.handlers import attributed_event, retraction
from spm.evaluation.attribution.scoring import world_index
from spm.evaluation.attribution.world import generate_dataset

OFFSETS = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-7)))


def _contract(
    activity: ActivityIngestedV1, decision: AttributionDecision, version: int, decided_at: datetime
) -> ActivityAttributedV1:
    """The event as the consumer built it before (pydantic, validated)."""
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
        facts=ActivityFacts(
            kind=activity.kind,
            direction=activity.direction,
            outcome=activity.outcome,
            occurred_at=activity.occurred_at,
            duration_seconds=activity.duration_seconds,
            external_participants=decision.external_participants,
            external_contact_ids=decision.external_contact_ids,
            automated=activity.automated,
            revision=activity.revision,
        ),
        decided_at=decided_at,
        explanation={"rule_path": decision.rule_path, "ingested_at": activity.ingested_at.isoformat()},
    )


def _assert_same_bytes(event: Attributed, contract: ActivityAttributedV1, fast: bool = True) -> None:
    body = encode_attributed(event)
    assert body == encode_body(contract)
    # The metrics consumer reads it back: on its fast path, equal to what it was built from
    # (an escape or a U+2028 goes to the contract's path), and the contract always.
    assert decode_fast(body) == (event if fast else None)
    assert decode_body(ActivityAttributedV1, body) == contract


def test_every_version_of_the_evaluation_world_encodes_to_the_contract_s_bytes() -> None:
    dataset = generate_dataset(2_000, seed=11)
    rng = random.Random(11)
    compared = 0
    statuses: set[AttributionStatus] = set()
    for policy in (
        TenantAttributionPolicy(),
        TenantAttributionPolicy(ambiguity_policy=AmbiguityPolicy.UNIQUE_ONLY),
    ):
        index = world_index(dataset.world)
        for labelled in dataset.activities:
            # The activity in another offset sometimes: facts keep the offset they were given.
            activity = labelled.activity.model_copy(
                update={"occurred_at": labelled.activity.occurred_at.astimezone(rng.choice(OFFSETS))}
            )
            decision = attribute_from_index(activity, index, policy)
            decided_at = datetime(
                2026, 12, 3, 11, 59, 59, rng.choice((0, 1, 120_000, 999_999)), tzinfo=rng.choice(OFFSETS)
            )
            version = rng.randint(1, 2**31 - 1)
            _assert_same_bytes(
                attributed_event(activity, decision, version, decided_at),
                _contract(activity, decision, version, decided_at),
            )
            statuses.add(decision.status)
            compared += 1
    assert compared == 4_000
    assert statuses == set(AttributionStatus)


def test_awkward_values_encode_to_the_contract_s_bytes() -> None:
    activity = generate_dataset(20, seed=2).activities[0].activity
    decided_at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    base = AttributionDecision(
        AttributionStatus.ATTRIBUTED, "rep-1", "team-1", "acc-1", "deal-1", 1.0, "contact"
    )
    decisions = [
        base,
        replace(base, confidence=0.0),
        replace(base, confidence=0.1 + 0.2),
        replace(base, confidence=1 / 3),
        replace(base, confidence=1e-7),
        replace(base, confidence=1.5),  # clamped to 1.0, as before
        replace(
            base, rep_id='r\u00e9p-\U0001f600 "quoted" </script> \u2028', secondary_deal_ids=("d/1", "d\\2")
        ),
        replace(
            base, rep_id=None, team_id=None, account_id=None, deal_id=None, status=AttributionStatus.UNMATCHED
        ),
        replace(base, external_participants=2**31 - 1, external_contact_ids=("c-1", "c-\u00fc")),
    ]
    for number, decision in enumerate(decisions):
        _assert_same_bytes(
            attributed_event(activity, decision, 7, decided_at),
            _contract(activity, decision, 7, decided_at),
            # Seven digits after a dot, as 0.30000000000000004 has, send the metrics consumer to the
            # contract (it cannot tell them from a time's fraction); so do U+2028 and escapes.
            fast=number not in (2, 3, 6),
        )


def test_a_retraction_encodes_to_the_contract_s_bytes() -> None:
    activity = generate_dataset(20, seed=2).activities[3].activity
    stored = StoredAttribution(activity.activity_id, 4, "attributed", "r", "t", "a", "d", ("d2",), 0.9, False)
    now = datetime(2026, 12, 3, 12, 0, 0, 5, tzinfo=UTC)
    contract = ActivityAttributedV1(
        tenant_id=activity.tenant_id,
        activity_id=activity.activity_id,
        version=5,
        status=AttributionStatus.EXCLUDED,
        confidence=1.0,
        facts=ActivityFacts(
            kind=activity.kind,
            direction=activity.direction,
            outcome=activity.outcome,
            occurred_at=activity.occurred_at,
            duration_seconds=activity.duration_seconds,
            automated=activity.automated,
            revision=activity.revision,
        ),
        decided_at=now,
        explanation={"rule_path": "erased", "ingested_at": activity.ingested_at.isoformat()},
    )
    _assert_same_bytes(retraction(activity, stored, now), contract)
