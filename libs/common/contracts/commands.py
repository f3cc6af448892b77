"""Raw webhook capture and admin commands carried on topics."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts.activities import TenantId


class WebhookReceivedV1(BaseModel):
    """Event ``webhook-received``: an accepted raw vendor payload, kept to re-normalise history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    source: str
    adapter_version: str
    received_at: datetime
    content_type: str
    body: str = Field(description="The raw body as received (UTF-8)")
    headers: dict[str, str] = Field(default_factory=dict, description="Vendor headers, secrets removed")


class AttributionOverriddenV1(BaseModel):
    """Event ``attribution-overridden``: a sticky manual attribution set by an admin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    activity_id: uuid.UUID
    deal_id: str | None = None
    rep_id: str | None = None
    account_id: str | None = None
    set_by: str
    set_at: datetime
    reason: str | None = Field(default=None, max_length=1_000)
