"""Ingest settings (``INGEST_*``) on top of the shared groups."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings


class IngestOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    port: int = 8001
    max_body_bytes: int = 5 * 1024 * 1024
    max_batch_activities: int = 1_000
    #: Answer 503 when the broker has not acknowledged within this many seconds.
    publish_timeout_seconds: float = 1.5
    retry_after_seconds: int = 2
    #: Accepted clock skew: activities further in the future are refused (a documented policy).
    max_future_skew_seconds: int = 86_400
    #: Activities older than this are refused: they cannot be coached and usually mean a bad clock.
    max_age_days: int = 3_650
    #: Tenant settings and derived internal domains are cached this long (a change applies within it).
    tenant_cache_seconds: float = 30.0
    #: Queued ``reread_phones`` jobs (the tenant's phone region changed) are looked for this often.
    jobs_interval_seconds: float = Field(default=1.0, gt=0)
    #: A ``reread_phones`` job reads the tenant's contacts once more this long after it ran: the
    #: contacts synced around the change and written by attribution since (the settings cache's
    #: ``tenant_cache_seconds`` plus a margin for attribution's consumer lag).
    reread_again_after_seconds: float = Field(default=120.0, ge=0)
    #: The public scheme://host[:port] vendors call, when a proxy rewrites it (Twilio and HubSpot sign the URL).
    public_base_url: str | None = None


class IngestSettings(CommonSettings):
    ingest: IngestOptions = Field(default_factory=IngestOptions)
