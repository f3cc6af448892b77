"""The extensions CRM contacts and reps list with their phones: ``+14155550100;ext=12``.

``phones`` keeps the bare lines (matching on the line, dedupe and erasure read it as before);
``phone_extensions`` holds each line listed with an extension keyed ``<e164>;ext=<digits>``, so a
call to a line and an extension matches the one contact or rep listing it. Empty for the rows
held (``spm renormalize-phones`` fills it from ``raw_phones``).

Revision ID: 0023_phone_extensions
Revises: 0022_crm_countries
Create Date: 2026-12-04
"""

from alembic import op

revision = "0023_phone_extensions"
down_revision = "0022_crm_countries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ref_reps ADD COLUMN phone_extensions text[] NOT NULL DEFAULT '{}'")
    op.execute("ALTER TABLE ref_contacts ADD COLUMN phone_extensions text[] NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE ref_contacts DROP COLUMN phone_extensions")
    op.execute("ALTER TABLE ref_reps DROP COLUMN phone_extensions")
