"""What an account is to the tenant: the CRM's account type as sent (HubSpot's company ``type``,
Salesforce's ``Account.Type``) and the relationship read from it (``customer``, ``prospect``,
``partner``, ``vendor``, ``other``; ``AccountV1.relationship``).

Attribution reads the relationship with each deal (``reference_loader``): a partner's deal
yields to its customer's when both are candidates of one activity. Null where the CRM states
none (every row held before this migration): an untyped account is no partner.

Revision ID: 0033_account_relationships
Revises: 0032_scheduled_meetings
Create Date: 2026-12-04
"""

from alembic import op

revision = "0033_account_relationships"
down_revision = "0032_scheduled_meetings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ref_accounts ADD COLUMN account_type text")
    op.execute("ALTER TABLE ref_accounts ADD COLUMN relationship text")


def downgrade() -> None:
    op.execute("ALTER TABLE ref_accounts DROP COLUMN relationship")
    op.execute("ALTER TABLE ref_accounts DROP COLUMN account_type")
