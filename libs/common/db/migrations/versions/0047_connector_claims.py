"""A mailbox's current claim (``claimed_at``, stamped by the run that leased it): the run's writes
are fenced on it, so a run that outlived its lease (a slow vendor) writes nothing over the run that
claimed the mailbox after it, nor releases that run's lease. NULL for the rows held (no run yet).

Revision ID: 0047_connector_claims
Revises: 0046_deal_former_names
Create Date: 2026-12-05
"""

from alembic import op

revision = "0047_connector_claims"
down_revision = "0046_deal_former_names"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE connector_mailboxes ADD COLUMN claimed_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE connector_mailboxes DROP COLUMN claimed_at")
