"""JWT subjects signed out by an admin: tokens issued before ``not_before`` are refused.

Identity providers' JWTs are checked by signature alone, so before this a leaked or departing
user's token held until its ``exp``. A row here names a subject (the ``sub`` claim) of one tenant:
its tokens issued (``iat``) before ``not_before``, and those without ``iat``, are refused, and the
dashboard sessions opened with them were revoked with the row. Tokens issued later are accepted,
so signing someone in again needs nothing here.

Revision ID: 0015_jwt_revocations
Revises: 0014_pg_row_indexes
Create Date: 2026-12-03
"""

from alembic import op

revision = "0015_jwt_revocations"
down_revision = "0014_pg_row_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE jwt_revocations (
            tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
            subject text NOT NULL,
            not_before timestamptz NOT NULL,
            revoked_by text NOT NULL,
            reason text NOT NULL DEFAULT '',
            PRIMARY KEY (tenant_id, subject)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE jwt_revocations")
