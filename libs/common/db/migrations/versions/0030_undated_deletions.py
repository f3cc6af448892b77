"""When a calendar deletion its source does not date (Graph's ``@removed``, Google's stripped
event) was last read, under the deleted object's own activity id: a revision of the object read
before then and delivered after it is an older state, and ingest does not publish it. The
deletion itself is published right after the newest revision of the object, in the source's own
order. Pruned with ingest's other ledgers; empty at first.

Revision ID: 0030_undated_deletions
Revises: 0029_contact_former_accounts
Create Date: 2026-12-04
"""

from alembic import op

revision = "0030_undated_deletions"
down_revision = "0029_contact_former_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ingest_undated_deletions (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            read_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, activity_id)
        )
        """
    )
    op.execute("CREATE INDEX ingest_undated_deletions_age ON ingest_undated_deletions (read_at)")


def downgrade() -> None:
    op.execute("DROP TABLE ingest_undated_deletions")
