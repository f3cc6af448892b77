"""The attribution of an activity to a rep, team, account and deal, versioned."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts.activities import ActivityKind, Direction, Outcome, TenantId


class AttributionStatus(StrEnum):
    ATTRIBUTED = "attributed"
    AMBIGUOUS = "ambiguous"
    ACCOUNT_ONLY = "account_only"
    UNMATCHED = "unmatched"
    INTERNAL = "internal"
    EXCLUDED = "excluded"


class ActivityFacts(BaseModel):
    """What metrics needs to know about the activity itself, carried so it never reads attribution's tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ActivityKind
    direction: Direction
    outcome: Outcome
    occurred_at: datetime
    duration_seconds: int = 0
    external_participants: int = 0
    external_contact_ids: tuple[str, ...] = ()
    automated: bool = False


class ActivityAttributedV1(BaseModel):
    """Event ``activity-attributed``: version ``version`` of an activity's attribution.

    A higher version supersedes every lower one of the same activity: metrics retracts
    the contribution of the version it holds and adds this one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    activity_id: uuid.UUID
    version: int = Field(ge=1)
    status: AttributionStatus
    rep_id: str | None = None
    team_id: str | None = None
    account_id: str | None = None
    deal_id: str | None = None
    secondary_deal_ids: tuple[str, ...] = ()
    confidence: float = Field(ge=0.0, le=1.0)
    facts: ActivityFacts
    decided_at: datetime
    explanation: dict[str, Any] = Field(default_factory=dict)
