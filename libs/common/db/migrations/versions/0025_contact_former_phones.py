"""Phones a CRM contact held before its record dropped them: a number changed, a contact who
left (deleted). ``until`` is the ``updated_at`` of the version that dropped it; the number is the
contact's for activities before then (a late call to the old number), whoever lists it now.
``account_id`` is the contact's account when it held the number (a deleted contact's tombstone
names none); ``shared_with`` the other contacts listing the number then (a switchboard), who held
it too. Empty for the rows held: history starts with this migration.

Revision ID: 0025_contact_former_phones
Revises: 0024_contact_unread_phones
Create Date: 2026-12-04
"""

from alembic import op

revision = "0025_contact_former_phones"
down_revision = "0024_contact_unread_phones"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ref_contact_former_phones (
            tenant_id text NOT NULL,
            phone text NOT NULL,
            contact_id text NOT NULL,
            until timestamptz NOT NULL,
            account_id text,
            shared_with text[] NOT NULL DEFAULT '{}',
            PRIMARY KEY (tenant_id, phone, contact_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX ref_contact_former_phones_contact ON ref_contact_former_phones (tenant_id, contact_id)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE ref_contact_former_phones")
