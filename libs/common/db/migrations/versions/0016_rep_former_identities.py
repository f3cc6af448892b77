"""The emails and phones a rep held before: a rename, a new domain, her departure.

``ref_rep_identities`` holds what each rep holds now. When a rep's record arrives without an
address it used to hold (Ana Lopez marries and becomes Ana Ruiz; the company moves to a new
domain), mail from the old address that arrives late, or is re-matched later, is still hers.
When a rep is deleted (she left), every email and phone she held stays hers for what happened
before she left. A row names the rep that last held the identity and when it stopped (``until``,
the ``updated_at`` of the version that dropped it, or of the deletion). An address that a live
rep holds now is that rep's for anything after a departure; a rep merged into another takes its
former identities with it (the survivor takes over).

Revision ID: 0016_rep_former_identities
Revises: 0015_jwt_revocations
Create Date: 2026-12-03
"""

from alembic import op

revision = "0016_rep_former_identities"
down_revision = "0015_jwt_revocations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ref_rep_former_identities (
            tenant_id text NOT NULL,
            identity text NOT NULL,
            rep_id text NOT NULL,
            until timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, identity)
        )
        """
    )
    op.execute("CREATE INDEX ref_rep_former_identities_rep ON ref_rep_former_identities (tenant_id, rep_id)")


def downgrade() -> None:
    op.execute("DROP TABLE ref_rep_former_identities")
