"""Builders of ``activity-attributed`` events for the metrics domain tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.attribution import ActivityAttributedV1, ActivityFacts, AttributionStatus

DEFAULT_OUTCOME = {
    ActivityKind.CALL: Outcome.CONNECTED,
    ActivityKind.EMAIL: Outcome.SENT,
    ActivityKind.MEETING: Outcome.HELD,
}
ACTIVITY_ONE = uuid.UUID("00000000-0000-4000-8000-000000000001")


def attributed(
    *,
    tenant_id: str = "acme",
    kind: ActivityKind = ActivityKind.CALL,
    direction: Direction = Direction.OUTBOUND,
    outcome: Outcome | None = None,
    occurred_at: datetime = datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
    duration_seconds: int = 0,
    external_participants: int = 1,
    external_contact_ids: tuple[str, ...] = (),
    automated: bool = False,
    status: AttributionStatus = AttributionStatus.ATTRIBUTED,
    rep_id: str | None = "rep-1",
    team_id: str | None = "team-1",
    account_id: str | None = "acc-1",
    deal_id: str | None = "deal-1",
    activity_id: uuid.UUID = ACTIVITY_ONE,
    version: int = 1,
    revision: int = 0,
    decided_at: datetime | None = None,
) -> ActivityAttributedV1:
    return ActivityAttributedV1(
        tenant_id=tenant_id,
        activity_id=activity_id,
        version=version,
        status=status,
        rep_id=rep_id,
        team_id=team_id,
        account_id=account_id,
        deal_id=deal_id,
        confidence=1.0,
        facts=ActivityFacts(
            kind=kind,
            direction=direction,
            outcome=outcome or DEFAULT_OUTCOME[kind],
            occurred_at=occurred_at,
            duration_seconds=duration_seconds,
            external_participants=external_participants,
            external_contact_ids=external_contact_ids,
            automated=automated,
            revision=revision,
        ),
        decided_at=decided_at or datetime(2026, 11, 24, 16, 0, tzinfo=UTC),
    )
