"""Typed settings groups shared by every service.

Each group reads its own environment prefix. A service composes the groups it needs
in its own ``settings.py``. Insecure defaults are refused outside local mode.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(StrEnum):
    """Where the process runs: ``local`` permits the embedded engines and demo secrets."""

    LOCAL = "local"
    PRODUCTION = "production"


class KafkaSettings(BaseSettings):
    """Broker connection and producer/consumer tuning (``KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    #: Prefixed to every logical topic name; lets tests and tenants of a shared
    #: cluster use their own topics.
    topic_prefix: str = ""
    #: Idempotent producers need broker support; the embedded Tansu broker rejects them.
    enable_idempotence: bool = True
    client_id: str = "spm"
    request_timeout_ms: int = 10_000
    linger_ms: int = 5
    max_batch_bytes: int = 1_048_576
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    partitions: int = 6
    replication_factor: int = 1


class DatabaseSettings(BaseSettings):
    """PostgreSQL connection (``DATABASE_*``; ``DATABASE_URL`` is the DSN)."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/spm")
    pool_size: int = 10
    max_overflow: int = 5
    statement_timeout_ms: int = 30_000
    echo: bool = False
    #: Test every pooled connection before use: three round trips (BEGIN, a no-op, ROLLBACK)
    #: per checkout. Off by default: a connection broken by a PostgreSQL restart or failover
    #: fails its first statement instead, the pool then discards every connection opened
    #: before the failure, the request answers 503 + Retry-After and a consumer retries its
    #: batch. Turn it on behind a proxy that drops idle connections without closing them.
    pool_pre_ping: bool = False
    #: Replace pooled connections older than this many seconds (-1: never).
    pool_recycle_seconds: int = 1_800


class ConsumerSettings(BaseSettings):
    """Batching, commit and retry policy of a Kafka consumer (``CONSUMER_*``)."""

    model_config = SettingsConfigDict(env_prefix="CONSUMER_", extra="ignore")

    max_batch_size: int = 2_000
    max_batch_time_ms: int = 200
    #: Fetch and decode the next batch while the handler works on this one (its statements and
    #: acknowledgements are waits of this process): nothing of it is handled or committed
    #: before this batch is done, and a rebalance in between drops it (read again). Off: on one
    #: 2-core machine with PostgreSQL beside it no gain was measured (docs/performance.md,
    #: "seventeenth round"); for PostgreSQL over a network, where round trips are longer waits.
    read_ahead: bool = False
    #: The longest the broker may hold a fetch that finds nothing new (aiokafka's default is
    #: 500). Kafka answers a waiting fetch as soon as data arrives; the embedded Tansu broker
    #: does not, so each hop waited up to this long for data already written (p50 about
    #: 120 ms a hop at 500, 15 ms at 100, measured). An idle consumer asks this often.
    fetch_max_wait_ms: int = 100
    commit_interval_ms: int = 1_000
    retry_initial_backoff_ms: int = 200
    retry_max_backoff_ms: int = 5_000
    #: Give up after this long retrying one batch and exit non-zero: the
    #: orchestrator restarts the process and the batch is read again.
    retry_deadline_ms: int = 60_000
    #: Stop the consumer when more than this many messages went to the DLQ within
    #: ``dlq_window_messages`` consecutive messages: a bad deploy must not drain a topic.
    dlq_limit: int = 100
    dlq_window_messages: int = 1_000
    session_timeout_ms: int = 30_000
    max_poll_interval_ms: int = 300_000
    #: How long members get to finish their batch and commit when partitions move.
    rebalance_timeout_ms: int = 30_000
    #: How often lag and the oldest unprocessed message's age are read from the broker.
    progress_interval_ms: int = 5_000
    #: ``/readyz`` answers 503 while a transient failure has been retried this long (a
    #: stuck consumer is visible before the retry deadline restarts it).
    not_ready_after_retrying_ms: int = 20_000


class RuntimeSettings(BaseSettings):
    """Process-wide settings (``SPM_*``)."""

    model_config = SettingsConfigDict(env_prefix="SPM_", extra="ignore")

    mode: Mode = Mode.LOCAL
    log_level: str = "INFO"
    log_json: bool = True
    #: Pepper mixed into API-key hashes; must be set outside local mode.
    secret_key: SecretStr = SecretStr("local-insecure-secret-key")
    host: str = "127.0.0.1"

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> RuntimeSettings:
        if self.mode is Mode.PRODUCTION and self.secret_key.get_secret_value() == "local-insecure-secret-key":
            raise ValueError("SPM_SECRET_KEY must be set when SPM_MODE=production")
        return self


class CommonSettings(BaseSettings):
    """The groups every service shares."""

    model_config = SettingsConfigDict(extra="ignore")

    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
