"""Metrics settings (``METRICS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings, ConsumerSettings


class MetricsOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")

    port: int = 8003
    group_id: str = "spm-metrics"
    #: Tenant settings are re-read at least this often (a ``settings-changed`` event drops them sooner).
    tenant_cache_seconds: float = 30.0
    #: The read-model refresher looks for dirty tenants (and moved scoring models) this often.
    refresh_interval_seconds: float = Field(default=5.0, gt=0)
    #: Every tenant is refreshed at least this often, dirty or not: deals go stale with time alone.
    full_refresh_seconds: float = Field(default=900.0, gt=0)
    #: Versions set aside while their tenant's rollups were busy (a rebuild or rescore) are looked
    #: for this often, and applied once the tenant's rollups are free.
    drain_interval_seconds: float = Field(default=1.0, gt=0)
    #: Queued settings jobs (rollup rebuilds after a calendar change) are looked for this often.
    jobs_interval_seconds: float = Field(default=1.0, gt=0)
    #: Periods of each grain kept in rep_period_stats, the current one included.
    reported_periods: int = Field(default=12, ge=1, le=104)
    #: Outbound alert webhooks: attempts before giving up, first retry delay (doubling), its cap.
    alert_max_attempts: int = Field(default=8, ge=1, le=50)
    alert_backoff_seconds: float = Field(default=30.0, gt=0)
    alert_backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    alert_timeout_seconds: float = Field(default=5.0, gt=0)
    #: The retention purge runs this often (0: never; then run ``spm purge`` from a CronJob).
    purge_interval_seconds: float = Field(default=3_600.0, ge=0)
    #: Ingest's duplicate ledgers keep a delivery this long: a redelivery (or another source's
    #: sighting of one meeting) arriving later is published again; attribution and metrics apply
    #: each (activity, revision) once, so that costs a message, never a double count.
    ledger_retention_days: int = Field(default=14, ge=3, le=3_650)


class MetricsServiceSettings(CommonSettings):
    metrics: MetricsOptions = Field(default_factory=MetricsOptions)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
