"""An undated calendar deletion is kept under the calendar it was read in (``calendar``: the
mailbox a calendar connector named, ``''`` when none): a guest's removal of a meeting from her
calendar (Google's event ids are shared across the attendees' calendars) no longer drops a page of
the organizer's calendar read before it and delivered after. Rows held keep ``''`` (read as any
calendar's deletion, as before). Downgrading keeps the latest read of each activity.

Revision ID: 0034_undated_deletion_calendars
Revises: 0033_account_relationships
Create Date: 2026-12-04
"""

from alembic import op

revision = "0034_undated_deletion_calendars"
down_revision = "0033_account_relationships"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ingest_undated_deletions ADD COLUMN calendar text NOT NULL DEFAULT ''")
    op.execute("ALTER TABLE ingest_undated_deletions DROP CONSTRAINT ingest_undated_deletions_pkey")
    op.execute("ALTER TABLE ingest_undated_deletions ADD PRIMARY KEY (tenant_id, activity_id, calendar)")


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM ingest_undated_deletions d USING ingest_undated_deletions k
        WHERE d.tenant_id = k.tenant_id AND d.activity_id = k.activity_id
          AND (k.read_at > d.read_at OR (k.read_at = d.read_at AND k.calendar < d.calendar))
        """
    )
    op.execute("ALTER TABLE ingest_undated_deletions DROP CONSTRAINT ingest_undated_deletions_pkey")
    op.execute("ALTER TABLE ingest_undated_deletions DROP COLUMN calendar")
    op.execute("ALTER TABLE ingest_undated_deletions ADD PRIMARY KEY (tenant_id, activity_id)")
