"""Reps keep the phones their tenant's region could not read (rules 2026.12.40):

``ref_reps.unread_phones``, as ``ref_contacts.unread_phones`` (0024): the values a rep's record
sent that no region read (``020 7946 0958`` in a US tenant), kept as sent, not matched, and read
again by ingest's ``reread_phones`` job when the tenant's phone region changes. Before, such a
value was dropped: after ``default_phone_region`` changed, the rep's number did not come back
until her source sent her record again. Reps held before keep none (their source's next version
sends them).

Revision ID: 0045_rep_unread_phones
Revises: 0044_composed_identities
Create Date: 2026-12-05
"""

from alembic import op

revision = "0045_rep_unread_phones"
down_revision = "0044_composed_identities"
branch_labels = None
depends_on = None

LOCK_TIMEOUT = "5s"


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("ALTER TABLE ref_reps ADD COLUMN unread_phones text[] NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("ALTER TABLE ref_reps DROP COLUMN unread_phones")
