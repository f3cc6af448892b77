"""Every holding of a re-issued address, not only its latest (rules 2026.12.43): the key of
``ref_rep_former_identities`` becomes (tenant, identity, until), so ``sales-emea@`` held by Kim
until the 10th, then by Bo until the 12th, keeps both rows, and each activity goes to the holder
whose spell covers its time (the earliest ``until`` after it). Before, one row per address: Bo's
later row overwrote Kim's, and Kim's mail went to Bo on the next re-decision. The rows held stay
as they are. Downgrade keeps each address's latest holding (the old key).

Revision ID: 0049_rep_former_holdings
Revises: 0048_identities_by_contact
Create Date: 2026-12-05
"""

from alembic import op

revision = "0049_rep_former_holdings"
down_revision = "0048_identities_by_contact"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ref_rep_former_identities DROP CONSTRAINT ref_rep_former_identities_pkey")
    op.execute("ALTER TABLE ref_rep_former_identities ADD PRIMARY KEY (tenant_id, identity, until)")


def downgrade() -> None:
    op.execute(
        "DELETE FROM ref_rep_former_identities f USING ref_rep_former_identities later "
        "WHERE later.tenant_id = f.tenant_id AND later.identity = f.identity AND later.until > f.until"
    )
    op.execute("ALTER TABLE ref_rep_former_identities DROP CONSTRAINT ref_rep_former_identities_pkey")
    op.execute("ALTER TABLE ref_rep_former_identities ADD PRIMARY KEY (tenant_id, identity)")
