"""Attribution's Prometheus instruments (status label only: a handful of values)."""

from __future__ import annotations

from prometheus_client import Counter

ATTRIBUTIONS = Counter(
    "spm_attributions_total",
    "Attribution versions published, by status and rule path",
    ["status", "rule_path"],
)
REMATCHES = Counter("spm_rematches_total", "Parked activities re-attributed after CRM changes")
