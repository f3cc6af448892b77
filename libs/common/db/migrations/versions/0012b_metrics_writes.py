"""Fewer rows and index entries per counted activity: no account or deal rollups, no deal index.

* ``metric_rollups`` keeps the levels something reads: rep, team and ``team_rep`` (rep and team
  scores, funnels, leaderboards, insights, digests). No API or insight ever read the account and
  deal rows, yet they were 88 % of the cells the pipeline bench wrote (an account or deal gets
  few activities a day, so its cells aggregate poorly). Each contribution row still keeps the
  account and deal it credits, with its local day, so their figures stay derivable. Their rows
  are deleted and the level check narrowed; a downgrade rolls them up again from contributions.
* ``metric_contributions_deal`` is dropped: since ``0011_insights`` every read of a deal's
  activity goes through ``engaged_deal_ids`` (its GIN index), and nothing has read
  ``(tenant_id, deal_id, occurred_at)`` since, yet each attributed contribution wrote an entry.
"""

from __future__ import annotations

from alembic import op

revision = "0012b_metrics_writes"
down_revision = "0012_rep_roles"
branch_labels = None
depends_on = None

COUNTERS = (
    "activities",
    "dials",
    "connects",
    "conversations",
    "talk_seconds",
    "emails_sent",
    "emails_received",
    "buyer_replies",
    "meetings_booked",
    "meetings_held",
    "meetings_cancelled",
    "meetings_no_show",
    "internal_meetings_held",
)

#: The period start of a contribution's local day per grain, in the calendar its tenant's rollups
#: are built in (``services/metrics/adapters/rollups._PERIOD_START``).
_PERIOD_START = """CASE g.granularity
    WHEN 'day' THEN c.day
    WHEN 'week' THEN date_trunc('week', c.day)::date
    WHEN 'month' THEN date_trunc('month', c.day)::date
    ELSE (date_trunc('month', c.day) - make_interval(
        months => (extract(month FROM c.day)::int - COALESCE(k.fiscal_year_start_month, 1) + 12) % 3))::date
    END"""


def upgrade() -> None:
    op.execute("DELETE FROM metric_rollups WHERE level IN ('account', 'deal')")
    op.execute("ALTER TABLE metric_rollups DROP CONSTRAINT metric_rollups_level_check")
    op.execute(
        "ALTER TABLE metric_rollups ADD CONSTRAINT metric_rollups_level_check "
        "CHECK (level IN ('rep', 'team', 'team_rep'))"
    )
    op.execute("DROP INDEX IF EXISTS metric_contributions_deal")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX metric_contributions_deal ON metric_contributions (tenant_id, deal_id, occurred_at) "
        "WHERE deal_id IS NOT NULL"
    )
    op.execute("ALTER TABLE metric_rollups DROP CONSTRAINT metric_rollups_level_check")
    op.execute(
        "ALTER TABLE metric_rollups ADD CONSTRAINT metric_rollups_level_check "
        "CHECK (level IN ('rep', 'team', 'deal', 'account', 'team_rep'))"
    )
    columns = ", ".join(COUNTERS)
    sums = ", ".join(f"sum(c.{column})" for column in COUNTERS)
    nonzero = " OR ".join(f"sum(c.{column}) <> 0" for column in COUNTERS)
    for level in ("account", "deal"):
        op.execute(
            f"""
            INSERT INTO metric_rollups (tenant_id, level, entity_id, granularity, period_start, {columns}, score)
            SELECT c.tenant_id, '{level}', c.{level}_id, g.granularity, {_PERIOD_START}, {sums}, sum(c.score)
            FROM metric_contributions c
            LEFT JOIN metric_rollup_calendars k ON k.tenant_id = c.tenant_id
            CROSS JOIN (VALUES ('day'), ('week'), ('month'), ('quarter')) AS g(granularity)
            WHERE c.{level}_id IS NOT NULL AND c.day IS NOT NULL
            GROUP BY 1, 2, 3, 4, 5
            HAVING {nonzero}
            """
        )
