"""The names a CRM deal was seen with, by the ``updated_at`` of each version (rules 2026.12.44):
``ref_deal_names`` takes the place of ``ref_deal_former_names``. A deal's name at an activity's time is the
name of the latest version seen at or before it (the first one seen for an activity before
every version), so a version received late (a sync replay delivering the older name after the
newer one was stored) takes its place in the history like any other, whichever arrived first,
and a merged deal keeps the names it was seen with for its survivor. Only the first and the
last version seen of each run of one name are kept (the ones in between tell nothing more).
``ref_deals`` gets an index of the deals merged into another, read with the survivors a batch loads.

Each row held, ``(deal, until, name)``, becomes ``name`` seen just before ``until`` (1 µs: the
former table said it was the name up to the rename) and the next name (the next row's, else the
deal's current one) seen at ``until``. ``ref_deal_former_names`` is left in place, no longer
read or written (an attribution consumer of the previous release running during the roll
writes there; a later release drops it). Downgrade writes it again from the names seen, each
change of name a former name, ``until`` the first version seen with the next one.

Revision ID: 0051_deal_names_seen
Revises: 0050_buyer_answers
Create Date: 2026-12-05
"""

from alembic import op

revision = "0051_deal_names_seen"
down_revision = "0050_buyer_answers"
branch_labels = None
depends_on = None

#: The index on ``ref_deals`` waits this long for its lock (the attribution consumer's CRM
#: upserts), then fails and can be re-run, as ``0048_identities_by_contact``.
LOCK_TIMEOUT = "5s"


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute(
        """
        CREATE TABLE ref_deal_names (
            tenant_id text NOT NULL,
            deal_id text NOT NULL,
            seen timestamptz NOT NULL,
            name text NOT NULL,
            PRIMARY KEY (tenant_id, deal_id, seen)
        )
        """
    )
    op.execute(
        """
        INSERT INTO ref_deal_names (tenant_id, deal_id, seen, name)
        SELECT f.tenant_id, f.deal_id, f.until - interval '1 microsecond', f.name
        FROM ref_deal_former_names f
        UNION ALL
        SELECT x.tenant_id, x.deal_id, x.until, x.next_name FROM (
            SELECT f.tenant_id, f.deal_id, f.until,
                   coalesce(lead(f.name) OVER (PARTITION BY f.tenant_id, f.deal_id ORDER BY f.until),
                            nullif(d.name, '')) AS next_name
            FROM ref_deal_former_names f
            LEFT JOIN ref_deals d ON d.tenant_id = f.tenant_id AND d.deal_id = f.deal_id
        ) x WHERE x.next_name IS NOT NULL
        ON CONFLICT DO NOTHING
        """
    )
    # ``ref_deal_former_names`` stays (no longer read or written) for the consumers of the
    # previous release still running while attribution rolls; a later release drops it.
    # The deals merged into those a batch loads, read by index (few rows: merges are rare).
    op.execute(
        "CREATE INDEX ref_deals_merged_into ON ref_deals (tenant_id, merged_into) WHERE merged_into IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("DROP INDEX ref_deals_merged_into")
    op.execute("DELETE FROM ref_deal_former_names")
    op.execute(
        """
        INSERT INTO ref_deal_former_names (tenant_id, deal_id, until, name)
        SELECT tenant_id, deal_id, until, name FROM (
            SELECT tenant_id, deal_id, name,
                   lead(seen) OVER w AS until, lead(name) OVER w AS next_name
            FROM ref_deal_names WINDOW w AS (PARTITION BY tenant_id, deal_id ORDER BY seen)
        ) x WHERE next_name <> name
        """
    )
    op.execute("DROP TABLE ref_deal_names")
