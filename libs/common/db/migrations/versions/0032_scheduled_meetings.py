"""The meetings still ``scheduled``, by their start: attribution's held sweep finds those that
ended (``repository.lock_ended_scheduled_meetings``) in a partial index holding them alone (a meeting
leaves it when held, cancelled or a no-show), not among every activity of every tenant.

A plain ``CREATE INDEX`` (no migration here runs outside a transaction): it blocks writes to
``activities`` while it builds; on a large table build it first with ``CONCURRENTLY``
(docs/operations.md, Upgrading with migrations), which this migration then keeps.

Revision ID: 0032_scheduled_meetings
Revises: 0031_meeting_removals
Create Date: 2026-12-04
"""

from alembic import op

revision = "0032_scheduled_meetings"
down_revision = "0031_meeting_removals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS: an operator may have built it beforehand with CONCURRENTLY (docs/operations.md).
    op.execute(
        "CREATE INDEX IF NOT EXISTS activities_scheduled_meetings ON activities (occurred_at) "
        "WHERE kind = 'meeting' AND outcome = 'scheduled'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX activities_scheduled_meetings")
