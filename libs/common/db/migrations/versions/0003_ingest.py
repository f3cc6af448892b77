"""Ingest bookkeeping: deliveries already seen (duplicate counting) and cross-source meeting keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _script(sql: str) -> None:
    # asyncpg prepares each statement, so a script runs one statement at a time.
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _script(
        """
        CREATE TABLE ingest_seen_events (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            revision bigint NOT NULL,
            seen_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, activity_id, revision)
        );
        CREATE INDEX ingest_seen_events_age ON ingest_seen_events (seen_at);
        CREATE TABLE ingest_meeting_keys (
            tenant_id text NOT NULL,
            meeting_key text NOT NULL,
            activity_id uuid NOT NULL,
            source text NOT NULL,
            sighting_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, meeting_key)
        );
        CREATE INDEX ingest_meeting_keys_sighting ON ingest_meeting_keys (tenant_id, sighting_id)
        """
    )


def downgrade() -> None:
    _script(
        """
        DROP TABLE ingest_meeting_keys;
        DROP TABLE ingest_seen_events
        """
    )
