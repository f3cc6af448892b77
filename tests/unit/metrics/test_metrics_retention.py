"""Past retention, a version that finds no contribution is not counted: the kept aggregates stay exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.common.contracts.retention import RetentionSettings, retention_of
from libs.common.contracts.tenant_settings import InvalidTenantSettings, read_tenant_settings
from services.metrics.adapters.rollups import CONTRIBUTION_FIELDS
from services.metrics.domain.definitions import MetricSettings
from services.metrics.handlers import metric_settings_from, plan_batch

from .events import ACTIVITY_ONE, attributed

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SETTINGS = MetricSettings(activity_retention_days=30)


def test_a_version_of_an_activity_past_retention_without_a_contribution_counts_nothing() -> None:
    old = attributed(occurred_at=NOW - timedelta(days=31))
    rows, deltas = plan_batch([old], {}, SETTINGS, now=NOW)
    assert (rows, deltas) == ([], {})


def test_within_retention_or_without_a_policy_it_counts() -> None:
    recent = attributed(occurred_at=NOW - timedelta(days=29))
    rows, deltas = plan_batch([recent], {}, SETTINGS, now=NOW)
    assert [dict(zip(CONTRIBUTION_FIELDS, r, strict=True))["activity_id"] for r in rows] == [ACTIVITY_ONE]
    assert deltas
    old = attributed(occurred_at=NOW - timedelta(days=3000))
    rows, _ = plan_batch([old], {}, MetricSettings(), now=NOW)
    assert len(rows) == 1


def test_the_policy_is_read_from_the_tenant_settings_with_its_defaults() -> None:
    assert retention_of({}) == RetentionSettings(activities_days=730, raw_captures_days=30)
    assert retention_of({"retention": {"activities_days": 90}}).activities_cutoff(NOW) == NOW - timedelta(
        days=90
    )
    with pytest.raises(ValueError, match="activities_days"):
        retention_of({"retention": {"activities_days": 0}})
    settings = read_tenant_settings("acme", {"retention": {"activities_days": 90}})
    assert metric_settings_from(settings).activity_retention_days == 90
    assert metric_settings_from(read_tenant_settings("acme", {})).activity_retention_days == 730
    # The settings contract refuses an invalid policy, naming it.
    with pytest.raises(InvalidTenantSettings) as refused:
        read_tenant_settings("acme", {"retention": {"activities_days": "x"}})
    assert refused.value.settings == ("retention.activities_days",)


def test_a_newer_version_of_a_kept_contribution_still_replaces_it_past_retention() -> None:
    from services.metrics.adapters.rollups import COLUMNS, StoredContribution

    old = NOW - timedelta(days=31)
    stored = StoredContribution(
        1, "rep-1", "team-1", "deal-1", "acc-1", "attributed", old.date(), {"activities": 1}
    )
    rows, deltas = plan_batch(
        [attributed(occurred_at=old, version=2, rep_id="rep-2")], {ACTIVITY_ONE: stored}, SETTINGS, now=NOW
    )
    written = [dict(zip(CONTRIBUTION_FIELDS, r, strict=True)) for r in rows]
    assert [(r["version"], r["rep_id"]) for r in written] == [(2, "rep-2")]
    activities = COLUMNS.index("activities")
    assert deltas[("acme", "rep", "rep-1", "day", old.date())][activities] == -1
    assert deltas[("acme", "rep", "rep-2", "day", old.date())][activities] == 1
