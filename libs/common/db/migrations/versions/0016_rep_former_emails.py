"""The addresses a rep held before its CRM record was changed (a rename, a new domain).

``ref_rep_identities`` holds what each rep holds now. When a rep's record arrives without an
address it used to hold (Ana Lopez marries and becomes Ana Ruiz; the company moves to a new
domain), mail from the old address that arrives late, or is re-matched later, is still hers.
A row names the rep that last held the address and when it stopped (``until``, the
``updated_at`` of the version that dropped it). An address that some rep holds now is that rep's,
whatever this table says; a rep that is deleted or merged takes its former addresses with it.

Revision ID: 0016_rep_former_emails
Revises: 0015_jwt_revocations
Create Date: 2026-12-03
"""

from alembic import op

revision = "0016_rep_former_emails"
down_revision = "0015_jwt_revocations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ref_rep_former_emails (
            tenant_id text NOT NULL,
            email text NOT NULL,
            rep_id text NOT NULL,
            until timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, email)
        )
        """
    )
    op.execute("CREATE INDEX ref_rep_former_emails_rep ON ref_rep_former_emails (tenant_id, rep_id)")


def downgrade() -> None:
    op.execute("DROP TABLE ref_rep_former_emails")
