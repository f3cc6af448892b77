"""The held sweep's index by tenant: ``activities_scheduled_by_tenant`` on ``activities
(tenant_id, occurred_at)``, the meetings still ``scheduled`` and not retracted alone (0032's and
0035's predicate), replacing ``activities_scheduled_meetings`` (by start alone).

By start alone, a tenant the sweep leaves out (its settings invalid or gone) was stepped over row
by row on every pass, however many meetings it had waiting (its meetings among the others', the
earliest first). By tenant, the sweep finds the tenants by skipping through the index, drops the
ones left out there, and reads each other tenant's range alone
(``repository.tenants_with_ended_meetings``, ``lock_ended_scheduled_meetings``).

A plain ``CREATE INDEX`` (no migration here runs outside a transaction): writes to ``activities``
wait while it builds; on a large table build it first with ``CONCURRENTLY`` (docs/operations.md,
Upgrading with migrations), which this migration then keeps. The previous release's sweep reads
the new index too once the old one is gone (the whole partial index, sorted: slower, never a scan
of every activity).

Revision ID: 0036_scheduled_by_tenant
Revises: 0035_retracted_activities
Create Date: 2026-12-05
"""

from alembic import op

revision = "0036_scheduled_by_tenant"
down_revision = "0035_retracted_activities"
branch_labels = None
depends_on = None

INDEX = "activities_scheduled_by_tenant"
PREDICATE = "kind = 'meeting' AND outcome = 'scheduled' AND NOT retracted"


def upgrade() -> None:
    # IF NOT EXISTS: an operator may have built it beforehand with CONCURRENTLY (docs/operations.md).
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON activities (tenant_id, occurred_at) WHERE {PREDICATE}")
    op.execute("DROP INDEX IF EXISTS activities_scheduled_meetings")


def downgrade() -> None:
    op.execute(f"CREATE INDEX IF NOT EXISTS activities_scheduled_meetings ON activities (occurred_at) WHERE {PREDICATE}")
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
