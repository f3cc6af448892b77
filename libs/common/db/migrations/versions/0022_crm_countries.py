"""Where a contact and an account are: the country the CRM states (an ISO 3166 alpha-2 code).

A contact's national-format phones are read in its country, else its account's, else the
tenant's region: ingest reads an account's stored country for a contact synced without it, and
``spm renormalize-phones`` reads stored phones again in the same order. Null where the CRM
states none (every row held before this migration).

Revision ID: 0022_crm_countries
Revises: 0021_rep_absences
Create Date: 2026-12-04
"""

from alembic import op

revision = "0022_crm_countries"
down_revision = "0021_rep_absences"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ref_contacts ADD COLUMN country text")
    op.execute("ALTER TABLE ref_accounts ADD COLUMN country text")


def downgrade() -> None:
    op.execute("ALTER TABLE ref_accounts DROP COLUMN country")
    op.execute("ALTER TABLE ref_contacts DROP COLUMN country")
