"""The connectors' Prometheus instruments. Labels: provider only, never a mailbox or tenant."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTOR_FETCHED = Counter(
    "spm_connector_fetched_total",
    "Messages and events fetched from a provider and posted to ingest",
    ["provider"],
)
CONNECTOR_ERRORS = Counter(
    "spm_connector_errors_total",
    "Mailbox syncs that failed (the mailbox is retried later with backoff), by provider",
    ["provider"],
)
CONNECTOR_REFUSED = Counter(
    "spm_connector_refused_total",
    "Resources ingest refused on their own (malformed, e.g. a message without Message-ID), skipped",
    ["provider"],
)
CONNECTOR_RETRIES = Counter(
    "spm_connector_retries_total",
    "Vendor or ingest calls retried after 429, 5xx or a quota error, by provider",
    ["provider"],
)
CONNECTOR_LAG = Gauge(
    "spm_connector_lag_seconds",
    "Seconds since the least recently synced active mailbox of a provider last synced",
    ["provider"],
)
