"""Names a CRM deal had before a newer version of its record renamed it (rules 2026.12.42).
``until`` is the ``updated_at`` of the version that renamed it; ``name`` is its name for
activities before then (the earliest rename after the activity). A CRM sends its current state
only: without this, a rename re-decided the deal's window with the new name alone, and mail whose
subject named the deal by its name at the time lost that evidence (a close call). Empty for the
rows held: history starts with this migration.

Revision ID: 0046_deal_former_names
Revises: 0045_rep_unread_phones
Create Date: 2026-12-05
"""

from alembic import op

revision = "0046_deal_former_names"
down_revision = "0045_rep_unread_phones"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ref_deal_former_names (
            tenant_id text NOT NULL,
            deal_id text NOT NULL,
            until timestamptz NOT NULL,
            name text NOT NULL,
            PRIMARY KEY (tenant_id, deal_id, until)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE ref_deal_former_names")
