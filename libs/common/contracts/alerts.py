"""Alerts: an insight appeared or cleared (``insight-changed``)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts.fields import TenantId


class InsightChange(StrEnum):
    APPEARED = "appeared"
    CLEARED = "cleared"


class InsightChangedV1(BaseModel):
    """Event ``insight-changed``: an at-risk rep, stale deal or bright spot appeared or cleared.

    Published by metrics from an outbox written in the same transaction as the insights, so
    every transition is published at least once; ``change_id`` (per tenant, increasing)
    identifies it for consumers that deduplicate. ``reasons`` and ``details`` are the
    insight's (the last ones seen, for a cleared insight); docs/metrics.md defines them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    change_id: int = Field(ge=1)
    change: InsightChange
    kind: str
    subject_id: str
    team_id: str | None = None
    period_start: date | None = None
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = Field(default_factory=dict)
    changed_at: datetime
