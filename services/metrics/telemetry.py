"""Metrics' Prometheus instruments."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRESHNESS = Histogram(
    "spm_pipeline_freshness_seconds",
    "Time from ingest acknowledging an activity to its contribution being committed",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
CONTRIBUTIONS = Counter(
    "spm_metric_contributions_total",
    "Attribution versions applied to the rollups, by effect (added, replaced, stale, past_retention)",
    ["effect"],
)
INSIGHT_CHANGES = Counter(
    "spm_insight_changes_published_total",
    "insight-changed events published (an insight appeared or cleared)",
)
ALERT_DELIVERIES = Counter(
    "spm_alert_deliveries_total",
    "Outbound alert webhook attempts, by outcome (delivered, failed, gave_up)",
    ["outcome"],
)
DEFERRED = Counter(
    "spm_metrics_deferred_total",
    "Attribution versions a batch set aside because their tenant's rollups were busy (a rebuild or "
    "rescore running) or the tenant already had versions set aside; a redelivered one counts again",
)
#: Labelled by tenant, but only while the tenant has versions set aside (a handful at a time: the
#: tenants whose rebuild or rescore is running); the label goes once it is drained.
DEFERRED_WAITING = Gauge(
    "spm_metrics_deferred_versions",
    "Versions set aside in metric_deferred_events, not yet counted, per tenant that has any",
    ["tenant"],
)
DEFERRED_OLDEST_AGE = Gauge(
    "spm_metrics_deferred_oldest_age_seconds",
    "Age of the oldest version set aside in metric_deferred_events (0 when none is)",
)
