"""Metrics settings (``METRICS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings, ConsumerSettings


class MetricsOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")

    port: int = 8003
    group_id: str = "spm-metrics"
    #: Tenant calendar settings are re-read at most this often.
    tenant_cache_seconds: float = 60.0


class MetricsServiceSettings(CommonSettings):
    metrics: MetricsOptions = Field(default_factory=MetricsOptions)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
