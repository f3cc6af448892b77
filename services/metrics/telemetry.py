"""Metrics' Prometheus instruments."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
