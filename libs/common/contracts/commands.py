"""Raw webhook capture and admin commands carried on topics."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from libs.common.contracts.fields import ExternalId, SafeStr, SafeText, TenantId, UtcDatetime


class WebhookReceivedV1(BaseModel):
    """Event ``webhook-received``: an accepted raw vendor payload, kept to re-normalise history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    source: SafeStr
    adapter_version: SafeStr
    received_at: UtcDatetime
    content_type: SafeText
    #: Kept byte for byte (control characters included): it is replayed, never stored in a column.
    body: str = Field(description="The raw body as received (UTF-8)")
    headers: dict[str, str] = Field(default_factory=dict, description="Vendor headers, secrets removed")


class AttributionOverriddenV1(BaseModel):
    """Event ``attribution-overridden``: a sticky manual attribution set by an admin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    activity_id: uuid.UUID
    deal_id: ExternalId | None = None
    rep_id: ExternalId | None = None
    account_id: ExternalId | None = None
    set_by: SafeStr = Field(min_length=1)
    set_at: UtcDatetime
    reason: SafeText | None = Field(default=None, max_length=1_000)
