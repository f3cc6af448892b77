"""``activities.retracted``: the activity's attribution version in force retracted it as deleted
at its source (``rule_path`` ``deleted_at_source``). The stored row keeps what its source last
stated (a deleted meeting stays ``scheduled``), so without the flag it stayed in
``activities_scheduled_meetings`` (0032) and every pass of the held sweep stepped over it; the
index is rebuilt without the retracted meetings (``AND NOT retracted``), under the same name.

``ADD COLUMN ... NOT NULL DEFAULT false`` rewrites nothing (PostgreSQL 11 and later); one
``UPDATE`` sets the flag of the activities retracted now (one row per attribution: the version in
force). A newer revision (a restore) clears it; a deletion sets it. The index is a plain
``CREATE INDEX``: writes to ``activities`` wait while it builds; on a large table build it first
with ``CONCURRENTLY`` (docs/operations.md, Upgrading with migrations): the migration then finds
the index with the new predicate and keeps it.

Revision ID: 0035_retracted_activities
Revises: 0034_undated_deletion_calendars
Create Date: 2026-12-04
"""

from alembic import op
from sqlalchemy import text

revision = "0035_retracted_activities"
down_revision = "0034_undated_deletion_calendars"
branch_labels = None
depends_on = None

INDEX = "activities_scheduled_meetings"


def upgrade() -> None:
    # IF NOT EXISTS: an operator may have added it (and built the index) beforehand.
    op.execute("ALTER TABLE activities ADD COLUMN IF NOT EXISTS retracted boolean NOT NULL DEFAULT false")
    op.execute(
        "UPDATE activities a SET retracted = true FROM attributions t "
        "WHERE t.tenant_id = a.tenant_id AND t.activity_id = a.activity_id AND t.status = 'excluded' "
        "AND t.explanation->>'rule_path' = 'deleted_at_source' AND NOT a.retracted"
    )
    # 0032's index (without the flag in its predicate) is replaced; one built beforehand with
    # CONCURRENTLY under the new predicate is kept.
    old = op.get_bind().execute(
        text(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = :i "
            "AND indexdef NOT LIKE '%retracted%'"
        ),
        {"i": INDEX},
    )
    if old.first() is not None:
        op.execute(f"DROP INDEX {INDEX}")
    op.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON activities (occurred_at) "
        "WHERE kind = 'meeting' AND outcome = 'scheduled' AND NOT retracted"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute(
        f"CREATE INDEX {INDEX} ON activities (occurred_at) WHERE kind = 'meeting' AND outcome = 'scheduled'"
    )
    op.execute("ALTER TABLE activities DROP COLUMN retracted")
