"""The phones a CRM contact was sent with that no region tried could read, as sent.

``020 7946 0958`` of a contact stating no country is no number in a US tenant's region: it was
dropped. ``ref_contacts.unread_phones`` keeps such a value (not matched), so when the contact's
account is later given a country ingest reads it again there (and ``spm renormalize-phones``
reads it with the stored phones). Empty for the rows held: what was dropped before is gone.

Revision ID: 0024_contact_unread_phones
Revises: 0023_phone_extensions
Create Date: 2026-12-04
"""

from alembic import op

revision = "0024_contact_unread_phones"
down_revision = "0023_phone_extensions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ref_contacts ADD COLUMN unread_phones text[] NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE ref_contacts DROP COLUMN unread_phones")
