"""Attribution settings (``ATTRIBUTION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings, ConsumerSettings


class AttributionOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTRIBUTION_", extra="ignore")

    port: int = 8002
    group_id: str = "spm-attribution"
    #: Partitions of ``activities-ingested`` handled at once, each batch part in its own
    #: transaction (``Lanes``): one part's matching runs while another's statements are in
    #: PostgreSQL. 1 handles each batch whole, one at a time.
    partition_lanes: int = Field(default=1, ge=1, le=64)
    #: Upper bound of parked activities re-matched for one batch of CRM changes.
    rematch_limit: int = 5_000
    #: Tenant settings are re-read at least this often (a ``settings-changed`` event drops them sooner).
    tenant_cache_seconds: float = 30.0
    #: Queued re-attribution jobs are looked for this often.
    jobs_interval_seconds: float = Field(default=1.0, gt=0)
    #: A failed ``rematch`` job (the rest of a deal change's window past ``rematch_limit``) is queued
    #: again this many times, resuming after its last committed batch, before it stays ``failed``.
    rematch_retries: int = Field(default=5, ge=0)
    #: The first retry waits this long; each next one twice as long (30 s, 1, 2, 4, 8 minutes).
    rematch_retry_seconds: float = Field(default=30.0, gt=0)
    #: How long the erasure list is cached: a new erasure applies to incoming data within it.
    erasure_cache_seconds: float = 30.0
    #: How often queued erasure jobs (``POST /v1/privacy/erasures``) are looked for.
    erasure_poll_seconds: float = 5.0
    #: A meeting still ``scheduled`` this long after its end (its start, without a length) is held
    #: (``held_sweep``): a calendar does not edit an event when its time passes.
    held_grace_minutes: float = Field(default=15.0, ge=0)
    #: How often each process looks for such meetings; 0 turns the sweep off.
    held_sweep_interval_seconds: float = Field(default=60.0, ge=0)
    #: Meetings taken per pass (all tenants, locked in one transaction; each tenant's in a savepoint).
    held_sweep_batch: int = Field(default=500, ge=1, le=10_000)
    #: A tenant whose settings the sweep cannot read, or a meeting it fails on alone, is left out
    #: this long (logged, counted).
    held_sweep_quarantine_seconds: float = Field(default=3600.0, gt=0)


class AttributionSettings(CommonSettings):
    attribution: AttributionOptions = Field(default_factory=AttributionOptions)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
