"""``spm backfill-deal-names`` reports what it read and the ``spm reattribute`` to run next."""

from __future__ import annotations

from datetime import UTC, datetime

from services.attribution.deal_names_backfill import DealNamesBackfill
from spm.commands.deal_names import render_backfill


def test_the_report_names_the_reattribution_from_the_earliest_version_read() -> None:
    report = DealNamesBackfill(
        "acme",
        records=120,
        versions=14,
        deals=6,
        unreadable=1,
        earliest=datetime(2026, 10, 3, 8, tzinfo=UTC),
        latest=datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert render_backfill(report) == (
        "tenant acme: 120 records read, 14 deal versions of the tenant, names of 6 deals recorded, "
        "1 unreadable records left out\n"
        "versions from 2026-10-03: re-decide the mail since with "
        "spm reattribute --tenant acme --since 2026-10-03"
    )


def test_a_tenant_without_deal_versions_has_nothing_to_reattribute() -> None:
    assert render_backfill(DealNamesBackfill("acme", records=7)) == (
        "tenant acme: 7 records read, 0 deal versions of the tenant, names of 0 deals recorded"
    )
