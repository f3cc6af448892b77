"""A merged account's domains lead to its survivor.

``ref_account_domains`` held the domains of live accounts only: when a CRM sent a merged
account's record alone (``merged_into``), without re-sending the survivor with the domains it
now holds, mail from an address at those domains found no account. Attribution now keeps a
merged (not deleted) account's domains filed under it, and the reference loader follows its
merge to the survivor. This files the domains of the accounts already held merged; the
downgrade removes them.

Revision ID: 0019_merged_account_domains
Revises: 0018_inactive_reps_left
Create Date: 2026-12-04
"""

from alembic import op

revision = "0019_merged_account_domains"
down_revision = "0018_inactive_reps_left"
branch_labels = None
depends_on = None

_MERGED = "a.merged_into IS NOT NULL AND NOT a.deleted"


def upgrade() -> None:
    op.execute(
        f"""
        INSERT INTO ref_account_domains (tenant_id, domain, account_id)
        SELECT DISTINCT a.tenant_id, d, a.account_id FROM ref_accounts a, unnest(a.domains) d
        WHERE {_MERGED}
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DELETE FROM ref_account_domains ad USING ref_accounts a
        WHERE a.tenant_id = ad.tenant_id AND a.account_id = ad.account_id AND {_MERGED}
        """
    )
