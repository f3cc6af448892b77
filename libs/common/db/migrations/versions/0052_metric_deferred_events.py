"""Versions the metrics consumer set aside because their tenant's rollups were busy.

A rollup rebuild (a calendar change) or a rescore (a new scoring model) holds one tenant's
rollups for its whole transaction (19 s for 300,000 contributions). A consumer batch no longer
waits for it: it applies the other tenants' versions and writes that tenant's here, in the same
transaction, before its offsets are committed; the metrics drainer applies them, oldest first,
once the tenant's rollups are free. A tenant with rows here has its later versions queued behind
them. ``(tenant_id, activity_id, revision, version)`` is unique: a redelivered version is not
set aside twice. Downgrade drops the table, and refuses while it holds a version (it would be
lost: its offset is committed).

Revision ID: 0052_metric_deferred_events
Revises: 0051_deal_names_seen
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

revision = "0052_metric_deferred_events"
down_revision = "0051_deal_names_seen"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metric_deferred_events (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            revision bigint NOT NULL,
            version int NOT NULL,
            body bytea NOT NULL,
            deferred_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, activity_id, revision, version)
        )
        """
    )
    op.execute("CREATE INDEX metric_deferred_events_tenant ON metric_deferred_events (tenant_id, seq)")


def downgrade() -> None:
    waiting = op.get_bind().execute(text("SELECT count(*) FROM metric_deferred_events")).scalar_one()
    if waiting:
        raise RuntimeError(
            f"metric_deferred_events holds {waiting} version(s) not yet counted; dropping it would "
            "lose them (their offsets are committed). Let the metrics drainer apply them (metrics "
            "running: SELECT count(*) FROM metric_deferred_events reaches 0; a tenant whose rebuild "
            "or rescore is still running keeps its rows until it ends), roll metrics back, and "
            "downgrade again"
        )
    op.execute("DROP TABLE metric_deferred_events")
