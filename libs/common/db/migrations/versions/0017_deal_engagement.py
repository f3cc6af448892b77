"""Each deal's engagement kept as a row, caught up from a log of what changed.

The refresher's stale-deal insight needs, for every open deal, its last activity, last buyer
reply and distinct engaged contacts (the contributions whose ``engaged_deal_ids`` hold it). It
read them from the tenant's whole contribution history at every refresh (64-80 ms of backend
CPU at 50,000 contributions, growing with history). Now:

* ``metric_deal_engagement`` holds them per (tenant, deal), with the contact ids themselves so
  that a new contribution merges in (latest times, union of contacts);
* ``metric_deal_engagement_changes`` is what the metrics write path appends in the transaction
  that writes contributions: per batch and deal, either what the new contributions add, or
  ``recompute`` when a contribution stopped engaging the deal or lost something it gave it (a
  move, a retraction, an earlier time, a contact gone), since a maximum cannot be taken back.
  The retention purge and erasure append ``recompute`` rows for the deals they touch. The
  refresher consumes the tenant's rows (``DELETE ... RETURNING``) and is the only writer of the
  summary (docs/performance.md, "eighth round").

A recomputed deal's contributions are looked up through the GIN index on ``engaged_deal_ids``,
now without ``fastupdate``: each lookup scanned the whole pending list (up to 4 MB, every
contribution written since the last vacuum: 30 ms for 50,000), which also weighed on the
gateway's deal timeline; writing each entry into the index at once cost 1-2 us more per row.

The upgrade fills the summary from every existing contribution, with the definition the
refresher read until now (``services/metrics/adapters/read_models.py``).

Revision ID: 0017_deal_engagement
Revises: 0016_rep_former_identities
Create Date: 2026-12-03
"""

from alembic import op

revision = "0017_deal_engagement"
down_revision = "0016_rep_former_identities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metric_deal_engagement (
            tenant_id text NOT NULL,
            deal_id text NOT NULL,
            last_activity_at timestamptz NOT NULL,
            last_buyer_reply_at timestamptz,
            contact_ids text[] NOT NULL DEFAULT '{}',
            PRIMARY KEY (tenant_id, deal_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE metric_deal_engagement_changes (
            tenant_id text NOT NULL,
            deal_id text NOT NULL,
            recompute boolean NOT NULL,
            last_activity_at timestamptz,
            last_buyer_reply_at timestamptz,
            contact_ids text[] NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("ALTER INDEX metric_contributions_engaged SET (fastupdate = off)")
    # Turning it off keeps the entries already pending where they are until merged.
    op.execute("SELECT gin_clean_pending_list('metric_contributions_engaged')")
    op.execute("CREATE INDEX metric_deal_engagement_changes_tenant ON metric_deal_engagement_changes (tenant_id)")
    op.execute(
        """
        WITH e AS MATERIALIZED (
            SELECT c.tenant_id, unnest(c.engaged_deal_ids) AS deal, c.occurred_at, c.buyer_replies, c.contact_ids
            FROM metric_contributions c WHERE c.engaged_deal_ids <> '{}'
        ), times AS (
            SELECT tenant_id, deal, max(occurred_at) AS last_at,
                   max(occurred_at) FILTER (WHERE buyer_replies > 0) AS reply_at
            FROM e GROUP BY tenant_id, deal
        ), contacts AS (
            SELECT tenant_id, deal, array_agg(DISTINCT contact ORDER BY contact) AS ids
            FROM e, unnest(e.contact_ids) AS contact WHERE contact IS NOT NULL GROUP BY tenant_id, deal
        )
        INSERT INTO metric_deal_engagement (tenant_id, deal_id, last_activity_at, last_buyer_reply_at, contact_ids)
        SELECT t.tenant_id, t.deal, t.last_at, t.reply_at, COALESCE(k.ids, '{}')
        FROM times t LEFT JOIN contacts k ON k.tenant_id = t.tenant_id AND k.deal = t.deal
        """
    )


def downgrade() -> None:
    op.execute("ALTER INDEX metric_contributions_engaged RESET (fastupdate)")
    op.execute("DROP TABLE metric_deal_engagement_changes, metric_deal_engagement")
