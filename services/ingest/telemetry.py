"""Ingest's Prometheus instruments (labels: source and outcome/reason only)."""

from __future__ import annotations

from prometheus_client import Counter

INGEST_EVENTS = Counter(
    "spm_ingest_events_total",
    "Events seen by ingest, by source and outcome (accepted, duplicate, excluded, rejected)",
    ["source", "outcome"],
)
INGEST_REJECTIONS = Counter(
    "spm_ingest_rejections_total",
    "Requests refused by ingest, by source and reason",
    ["source", "reason"],
)
INGEST_EXCLUSIONS = Counter(
    "spm_ingest_excluded_total",
    "Activities withheld by a tenant's privacy policy, by source and reason",
    ["source", "reason"],
)
INGEST_IGNORED = Counter(
    "spm_ingest_ignored_total",
    "Items left out of an accepted delivery (listed in its `ignored`), by source and reason "
    "(time_ahead, time_block, older_state, not_done, other: services/ingest/domain/ignored.py)",
    ["source", "reason"],
)
INGEST_PHONES_DROPPED = Counter(
    "spm_ingest_phones_dropped_total",
    "Phones dropped from accepted CRM entities because they could not be read, by reason",
    ["reason"],
)
