"""A tenant's retention policy: how long activities and raw captures are kept (``settings.retention``).

Aggregates (the rollups behind scores, leaderboards and funnels) are kept whatever the policy:
they hold counts per rep, team, account and deal and period, no person. Until the typed
``TenantSettings`` contract carries a ``retention`` group, this model reads the ``retention``
object of ``tenants.settings``; what it leaves out takes the defaults below.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts.fields import StrictInt

#: Default retention of activities: 24 months.
DEFAULT_ACTIVITY_RETENTION_DAYS = 730
#: Default retention of raw captures kept in the database (vendor webhook state): 30 days.
DEFAULT_RAW_CAPTURE_RETENTION_DAYS = 30


class RetentionSettings(BaseModel):
    """How long the tenant's data is kept, in days, counted from the activity's ``occurred_at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Activities, their attributions, overrides and metric contributions (aggregates stay).
    activities_days: StrictInt = Field(default=DEFAULT_ACTIVITY_RETENTION_DAYS, ge=1, le=36_500)
    #: Vendor webhook state (``webhook_state``, e.g. a Zoom meeting's participants), from its last update.
    raw_captures_days: StrictInt = Field(default=DEFAULT_RAW_CAPTURE_RETENTION_DAYS, ge=1, le=3_650)

    def activities_cutoff(self, now: datetime) -> datetime:
        """Activities that occurred before this instant are past retention."""
        return now - timedelta(days=self.activities_days)

    def raw_captures_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.raw_captures_days)


def retention_of(settings: Mapping[str, Any] | None) -> RetentionSettings:
    """The retention policy in a tenant's settings document; ValueError names what is invalid."""
    document = (settings or {}).get("retention") or {}
    return RetentionSettings.model_validate(document)
