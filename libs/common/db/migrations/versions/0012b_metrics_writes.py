"""Fewer index entries per counted activity: drop ``metric_contributions_deal``.

Since ``0011_insights`` every read of a deal's activity goes through ``engaged_deal_ids`` (its
GIN index): the deal timeline and summary, the stale-deal insight and the rep figures. Nothing
has read ``(tenant_id, deal_id, occurred_at)`` since, yet every attributed contribution still
wrote an entry to it. Dropping it leaves the primary key, ``metric_contributions_time`` (the
retention purge) and ``metric_contributions_engaged``.
"""

from __future__ import annotations

from alembic import op

revision = "0012b_metrics_writes"
down_revision = "0011_insights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS metric_contributions_deal")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX metric_contributions_deal ON metric_contributions (tenant_id, deal_id, occurred_at) "
        "WHERE deal_id IS NOT NULL"
    )
