"""Accounts a CRM contact was at before a newer version of her record named another (she moved:
a new job, the CRM re-parenting her). ``until`` is the ``updated_at`` of the version that moved
her; ``account_id`` is her account for activities before then (the earliest move after the
activity). A CRM sends its current state only: without this, re-matching her earlier activities
read her new account. Empty for the rows held: history starts with this migration.

Revision ID: 0029_contact_former_accounts
Revises: 0028_tagged_contact_mailboxes
Create Date: 2026-12-04
"""

from alembic import op

revision = "0029_contact_former_accounts"
down_revision = "0028_tagged_contact_mailboxes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ref_contact_former_accounts (
            tenant_id text NOT NULL,
            contact_id text NOT NULL,
            until timestamptz NOT NULL,
            account_id text NOT NULL,
            PRIMARY KEY (tenant_id, contact_id, until)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE ref_contact_former_accounts")
