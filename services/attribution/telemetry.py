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
MEETINGS_HELD_BY_SWEEP = Counter(
    "spm_meetings_held_by_sweep_total",
    "Meetings still scheduled when their end passed, published as held by the sweep (a new version each)",
)
HELD_SWEEP_FAILURES = Counter(
    "spm_held_sweep_failures_total",
    "Held sweep failures: meetings it could not take on their own, tenants whose settings it could not read and queued versions it could not publish on their own (left out until their quarantine ends), rounds that failed as a whole, and checks that found its index missing",
)
PHONE_REREADS_DROPPED = Counter(
    "spm_phone_rereads_dropped_total",
    "Contacts a reread_phones job published that were not written: the contact changed since the job read it (a correction, a deletion), or its copy was not the version read with numbers added",
)
