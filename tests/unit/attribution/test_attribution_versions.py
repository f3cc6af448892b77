"""Versioning and parking of attribution decisions."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision, next_version, should_park
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import CurrentAttribution, ManualOverride, TenantAttributionPolicy

from .builders import email_out, snapshot

POLICY = TenantAttributionPolicy()
DECISION = AttributionDecision(
    status=AttributionStatus.ATTRIBUTED,
    rep_id="rep-ana",
    team_id="team-east",
    account_id="acc-acme",
    deal_id="deal-acme-new",
    confidence=0.9,
    rule_path="contact",
    explanation={"rule_version": "any"},
)


def current_of(decision: AttributionDecision, version: int) -> CurrentAttribution:
    return CurrentAttribution(
        version=version,
        status=decision.status,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        account_id=decision.account_id,
        deal_id=decision.deal_id,
        secondary_deal_ids=decision.secondary_deal_ids,
        confidence=decision.confidence,
        overridden=decision.overridden,
    )


OVERRIDE = replace(DECISION, deal_id="deal-globex", account_id="acc-globex", confidence=1.0, overridden=True)


@pytest.mark.parametrize(
    ("current", "decision", "expected"),
    [
        pytest.param(None, DECISION, 1, id="first decision is version 1"),
        pytest.param(current_of(DECISION, 3), DECISION, None, id="same content: no new version"),
        pytest.param(
            current_of(DECISION, 3), replace(DECISION, explanation={"rule_version": "next"}), None,
            id="a different explanation alone is not a new version",
        ),
        pytest.param(current_of(DECISION, 3), replace(DECISION, deal_id="deal-acme-exp"), 4, id="new deal"),
        pytest.param(current_of(DECISION, 3), replace(DECISION, team_id="team-west"), 4, id="new team"),
        pytest.param(current_of(DECISION, 3), replace(DECISION, confidence=0.8), 4, id="new confidence"),
        pytest.param(
            current_of(DECISION, 3), replace(DECISION, secondary_deal_ids=("deal-acme-exp",)), 4, id="new secondaries"
        ),
        pytest.param(current_of(OVERRIDE, 5), DECISION, None, id="an automatic decision never replaces an override"),
        pytest.param(current_of(OVERRIDE, 5), OVERRIDE, None, id="the same override again: nothing"),
        pytest.param(
            current_of(OVERRIDE, 5), replace(OVERRIDE, deal_id="deal-acme-exp"), 6, id="a new override replaces one"
        ),
        pytest.param(current_of(DECISION, 2), OVERRIDE, 3, id="an override replaces an automatic decision"),
    ],
)  # fmt: skip
def test_next_version(
    current: CurrentAttribution | None, decision: AttributionDecision, expected: int | None
) -> None:
    assert next_version(current, decision) == expected


def test_reprocessing_the_same_activity_publishes_nothing_new() -> None:
    act = email_out("ana@seller.example", "amy@acme.com")
    first = attribute_activity(act, snapshot(), POLICY)
    again = attribute_activity(act, snapshot(), POLICY)

    assert next_version(None, first) == 1
    assert next_version(current_of(first, 1), again) is None


def test_an_override_survives_a_rematch_that_would_decide_otherwise() -> None:
    act = email_out("ana@seller.example", "amy@acme.com")
    overridden = attribute_activity(act, snapshot(override=ManualOverride(deal_id="deal-globex")), POLICY)
    current = current_of(overridden, 2)

    rematch = attribute_activity(act, snapshot(), POLICY)

    assert rematch.deal_id == "deal-acme-new"
    assert next_version(current, rematch) is None


@pytest.mark.parametrize(
    ("decision", "policy", "parked"),
    [
        (replace(DECISION, status=AttributionStatus.UNMATCHED, deal_id=None), POLICY, True),
        (replace(DECISION, status=AttributionStatus.ACCOUNT_ONLY, deal_id=None), POLICY, True),
        (replace(DECISION, status=AttributionStatus.AMBIGUOUS), POLICY, True),
        (DECISION, POLICY, False),
        (replace(DECISION, confidence=0.3), POLICY, True),
        (replace(DECISION, status=AttributionStatus.INTERNAL, deal_id=None), POLICY, False),
        # A meeting someone dialled into from a number no contact lists yet: the CRM may list it.
        (
            replace(
                DECISION,
                status=AttributionStatus.INTERNAL,
                deal_id=None,
                explanation={"unidentified_callers": [2]},
            ),
            POLICY,
            True,
        ),
        (replace(DECISION, status=AttributionStatus.EXCLUDED, deal_id=None), POLICY, False),
        (replace(DECISION, status=AttributionStatus.UNMATCHED, overridden=True), POLICY, False),
        (replace(DECISION, status=AttributionStatus.UNMATCHED), TenantAttributionPolicy(park_days=0), False),
    ],
)
def test_should_park(decision: AttributionDecision, policy: TenantAttributionPolicy, parked: bool) -> None:
    assert should_park(decision, policy) is parked


@pytest.mark.parametrize(
    "settings",
    [
        {"grace_days_before_created": -1},
        {"grace_days_after_closed": -1},
        {"min_confidence": 1.5},
        {"park_days": -3},
        # A window no date survives: subtracting it overflowed in every activity's matching.
        {"grace_days_before_created": 1_000_000},
        {"grace_days_after_closed": 3_651},
        {"park_days": 10**12},
    ],
)
def test_a_policy_refuses_impossible_settings(settings: dict[str, int | float]) -> None:
    with pytest.raises(ValueError, match=r"must lie in"):
        TenantAttributionPolicy(**settings)  # type: ignore[arg-type]
