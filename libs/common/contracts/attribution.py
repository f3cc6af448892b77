"""The attribution of an activity to a rep, team, account and deal, versioned."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.fields import (
    Count,
    DurationSeconds,
    ExternalId,
    FiniteFloat,
    Revision,
    StrictBool,
    TenantId,
    UtcDatetime,
    Version,
)

Confidence = Annotated[FiniteFloat, Field(ge=0.0, le=1.0)]


def _is_none(value: object) -> bool:
    return value is None


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
    occurred_at: UtcDatetime
    duration_seconds: DurationSeconds = 0
    external_participants: Count = 0
    external_contact_ids: tuple[ExternalId, ...] = ()
    automated: StrictBool = False
    #: The activity's revision these facts come from: metrics never lets a lower revision's
    #: contribution replace a higher one's, whatever order the versions arrive in.
    revision: Revision = 0


class ActivityAttributedV1(BaseModel):
    """Event ``activity-attributed``: version ``version`` of an activity's attribution.

    A higher version supersedes every lower one of the same activity: metrics retracts
    the contribution of the version it holds and adds this one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    activity_id: uuid.UUID
    version: Version
    status: AttributionStatus
    rep_id: ExternalId | None = None
    team_id: ExternalId | None = None
    account_id: ExternalId | None = None
    deal_id: ExternalId | None = None
    secondary_deal_ids: tuple[ExternalId, ...] = ()
    confidence: Confidence
    facts: ActivityFacts
    decided_at: UtcDatetime
    explanation: dict[str, Any] = Field(default_factory=dict)
    #: Added within V1: this activity is a second report of a call another source reported
    #: first (that activity's id). Attributed like any activity, never counted: metrics counts
    #: the call once, under the first report. Written only when set.
    duplicate_of: uuid.UUID | None = Field(default=None, exclude_if=_is_none)
