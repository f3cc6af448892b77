"""Prometheus instruments shared by every service (plumbing only; business figures live in PostgreSQL).

Labels never carry rep, team, deal, tenant-user or event ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "spm_http_requests_total",
    "HTTP requests answered",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "spm_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_MESSAGES = Counter(
    "spm_consumer_messages_total",
    "Messages handled by a consumer, by outcome (processed, dlq, retried)",
    ["service", "topic", "outcome"],
)
CONSUMER_LAG = Gauge(
    "spm_consumer_lag_messages",
    "Messages between the consumer position and the partition high watermark",
    ["service", "topic", "partition"],
)
CONSUMER_OLDEST_AGE = Gauge(
    "spm_consumer_oldest_unprocessed_age_seconds",
    "Age (from its Kafka timestamp) of the oldest message of the partition not processed yet; 0 when caught up",
    ["service", "topic", "partition"],
)
CONSUMER_RETRYING_SECONDS = Gauge(
    "spm_consumer_retrying_seconds",
    "How long the consumer has been retrying a transient failure; 0 when it is not failing",
    ["service"],
)
CONSUMER_ISOLATION_CALLS = Counter(
    "spm_consumer_isolation_calls_total",
    "Extra handler calls made to isolate poison messages by splitting a failed batch",
    ["service"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "spm_consumer_batch_seconds",
    "Time to process one batch, side effects included",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DLQ_MESSAGES = Counter(
    "spm_dlq_messages_total",
    "Messages sent to a dead-letter topic",
    ["service", "topic"],
)
READY = Gauge("spm_ready", "1 when the service's dependencies are reachable", ["service"])
