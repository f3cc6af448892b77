"""``ingest_time_blocks``: the highest revision at which ingest read each object as no meeting (a
hold only colleagues attend, time away; ``webhook_types.TimeBlock``), under the object's own
activity id.

A time block publishes nothing: when it was the object's newest state and an older revision that
is a meeting arrived after it (a retried post, a client re-sending its history), nothing told the
meeting it was superseded, and it was published and counted. Ingest now drops a meeting older than
the time block held for its object (a newer revision that is a meeting again is kept, as before).
Pruned with ingest's other ledgers (the redelivery window).

Downgrading drops the table: a stale meeting revision posted after its hold is then published
again, as before this migration.

Revision ID: 0038_ingest_time_blocks
Revises: 0037_held_sweep_outbox
Create Date: 2026-12-05
"""

from alembic import op

revision = "0038_ingest_time_blocks"
down_revision = "0037_held_sweep_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS ingest_time_blocks (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            revision bigint NOT NULL,
            read_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, activity_id)
        )
        """
    )
    op.execute("CREATE INDEX IF NOT EXISTS ingest_time_blocks_age ON ingest_time_blocks (read_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS ingest_time_blocks")
