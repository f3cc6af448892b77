"""Attribution settings (``ATTRIBUTION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings, ConsumerSettings


class AttributionOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTRIBUTION_", extra="ignore")

    port: int = 8002
    group_id: str = "spm-attribution"
    #: Upper bound of parked activities re-matched for one batch of CRM changes.
    rematch_limit: int = 5_000
    #: Tenant settings are re-read at least this often (a ``settings-changed`` event drops them sooner).
    tenant_cache_seconds: float = 30.0
    #: Queued re-attribution jobs are looked for this often.
    jobs_interval_seconds: float = Field(default=1.0, gt=0)
    #: How long the erasure list is cached: a new erasure applies to incoming data within it.
    erasure_cache_seconds: float = 30.0
    #: How often queued erasure jobs (``POST /v1/privacy/erasures``) are looked for.
    erasure_poll_seconds: float = 5.0


class AttributionSettings(CommonSettings):
    attribution: AttributionOptions = Field(default_factory=AttributionOptions)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
