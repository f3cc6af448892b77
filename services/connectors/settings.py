"""Connector settings (``CONNECTORS_*``) on top of the shared groups."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import CommonSettings


class ConnectorsOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONNECTORS_", extra="ignore")

    port: int = 8004
    #: Where fetched resources are posted (ingest's signed webhook route), from inside the cluster.
    ingest_url: str = "http://127.0.0.1:8001"
    #: The public scheme://host of ingest that Google calls for Calendar watch channels; without
    #: it calendars are polled only. (Gmail's Pub/Sub push URL is set on the Pub/Sub subscription.)
    push_base_url: str | None = None
    #: How often the loop looks for due mailboxes.
    poll_seconds: float = Field(default=2.0, gt=0)
    #: Every mailbox is synced at least this often, pushed or not (a push can be lost).
    sync_interval_seconds: float = Field(default=900.0, gt=0)
    #: A mailbox being synced is leased this long (renewed at every page), so replicas never share one.
    lease_seconds: float = Field(default=300.0, gt=0)
    #: Mailboxes synced at once by one process.
    concurrency: int = Field(default=8, ge=1)
    #: Messages or events posted to ingest per request.
    batch_size: int = Field(default=100, ge=1, le=1_000)
    #: Attempts of one vendor or ingest call on 429 / 5xx / quota errors before the mailbox fails.
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=60.0, ge=0)
    #: A failing mailbox is retried after 30 s, doubling up to this.
    failure_backoff_max_seconds: float = Field(default=3_600.0, gt=0)
    #: Days fetched again when a cursor expired (Gmail 404, Calendar 410, Graph 410).
    resync_days: int = Field(default=7, ge=1)
    #: Watches and subscriptions are renewed when they expire within this.
    renew_margin_seconds: float = Field(default=86_400.0, ge=0)
    #: This process syncs the mailboxes whose id modulo ``shard_count`` is ``shard_index``.
    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1)
    gmail_base_url: str = "https://gmail.googleapis.com"
    calendar_base_url: str = "https://www.googleapis.com"
    graph_base_url: str = "https://graph.microsoft.com"
    #: The Microsoft identity platform authority host (client credentials).
    login_base_url: str = "https://login.microsoftonline.com"
    request_timeout_seconds: float = Field(default=30.0, gt=0)


class ConnectorsSettings(CommonSettings):
    connectors: ConnectorsOptions = Field(default_factory=ConnectorsOptions)
