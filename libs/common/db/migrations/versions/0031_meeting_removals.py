"""Guests who removed a meeting from their own calendar: her address as the meeting lists her,
her answer in the meeting then and the meeting's revision. A newer revision from the organizer's
calendar that still lists her with that answer leaves her out (the organizer's copy telling
nothing newer of her); one with another answer ends the row. Empty at first: removals before
this migration are not remembered.

Revision ID: 0031_meeting_removals
Revises: 0030_undated_deletions
Create Date: 2026-12-04
"""

from alembic import op

revision = "0031_meeting_removals"
down_revision = "0030_undated_deletions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE meeting_removals (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            address text NOT NULL,
            answer text,
            revision bigint NOT NULL,
            PRIMARY KEY (tenant_id, activity_id, address)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE meeting_removals")
