"""The revision of the activity each metric contribution counts.

Metrics keeps one contribution per activity: the one of the highest (revision, version).
Attribution versions rise with every revision it publishes, but a contribution now also
remembers its revision, so a lower revision's facts can never replace a higher one's whatever
order versions arrive in. Existing rows get 0 (every revision is at least that).

Revision ID: 0006_hardening
Revises: 0005_auth
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006_hardening"
down_revision = "0005_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: no table rewrite on PostgreSQL 11+.
    op.execute("ALTER TABLE metric_contributions ADD COLUMN revision bigint NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE metric_contributions DROP COLUMN revision")
