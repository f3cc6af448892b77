"""Attribution's Prometheus instruments (status label only: a handful of values)."""

from __future__ import annotations

from prometheus_client import Counter

ATTRIBUTIONS = Counter(
    "spm_attributions_total",
    "Attribution versions published, by status and rule path",
    ["status", "rule_path"],
)
REMATCHES = Counter(
    "spm_rematches_total",
    "Activities re-decided after CRM changes (parked ones, and those a changed deal or rep may move)",
)
