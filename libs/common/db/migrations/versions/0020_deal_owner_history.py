"""Who owned each deal when: a dated owner per deal, read at each activity's time.

A re-match (a deal's dates corrected, a new deal on the account, a rep gaining an address)
re-decides an old activity; the deal's owner taking part is read as it was when the activity
happened, not as it is now. A row says that ``owner_rep_id`` owns the deal from ``since`` (the
``updated_at`` of the CRM version that named it) until the next row; before a deal's first row,
its earliest known owner. Written by the deal upsert for a deal's first version and each newer
version that changes the owner. The backfill records each deal's current owner from its
creation: before the first row the earliest owner holds anyway, so in effect since always.

Revision ID: 0020_deal_owner_history
Revises: 0019_merged_account_domains
Create Date: 2026-12-04
"""

from alembic import op

revision = "0020_deal_owner_history"
down_revision = "0019_merged_account_domains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ref_deal_owners (
            tenant_id text NOT NULL,
            deal_id text NOT NULL,
            since timestamptz NOT NULL,
            owner_rep_id text,
            PRIMARY KEY (tenant_id, deal_id, since)
        )
        """
    )
    op.execute(
        "INSERT INTO ref_deal_owners (tenant_id, deal_id, since, owner_rep_id) "
        "SELECT tenant_id, deal_id, LEAST(created_at, updated_at), owner_rep_id FROM ref_deals"
    )


def downgrade() -> None:
    op.execute("DROP TABLE ref_deal_owners")
