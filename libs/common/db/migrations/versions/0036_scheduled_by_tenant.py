"""The held sweep's index by tenant: ``activities_scheduled_by_tenant`` on ``activities
(tenant_id, occurred_at)``, the meetings still ``scheduled`` and not retracted alone (0032's and
0035's predicate), beside ``activities_scheduled_meetings`` (by start alone).

By start alone, a tenant the sweep leaves out (its settings invalid or gone) was stepped over row
by row on every pass, however many meetings it had waiting (its meetings among the others', the
earliest first). By tenant, the sweep finds the tenants by skipping through the index, drops the
ones left out there, and reads each other tenant's range alone
(``repository.tenants_with_ended_meetings``, ``lock_ended_scheduled_meetings``).

The old index is kept: the previous release's sweep looks for it by name and does not sweep
without it (a pod of that release restarted during the rollout, or attribution rolled back), and
dropping it here would take an ``ACCESS EXCLUSIVE`` lock on ``activities``. A later release drops
it (``DROP INDEX CONCURRENTLY``, docs/operations.md).

A plain ``CREATE INDEX`` (no migration here runs outside a transaction): writes to ``activities``
wait while it builds; on a large table build it first with ``CONCURRENTLY`` (docs/operations.md,
Upgrading with migrations), which this migration then keeps. An invalid index left under either
name by a failed concurrent build (``pg_index.indisvalid`` false: never used, yet ``IF NOT
EXISTS`` would find it) is dropped and built again. The DDL waits at most ``LOCK_TIMEOUT`` for its
lock on ``activities`` (a long transaction holding it would otherwise queue every write behind the
migration): past it the migration fails, nothing changed; run it again.

Revision ID: 0036_scheduled_by_tenant
Revises: 0035_retracted_activities
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

revision = "0036_scheduled_by_tenant"
down_revision = "0035_retracted_activities"
branch_labels = None
depends_on = None

INDEX = "activities_scheduled_by_tenant"
OLD = "activities_scheduled_meetings"
PREDICATE = "kind = 'meeting' AND outcome = 'scheduled' AND NOT retracted"
#: How long each statement waits for its lock on ``activities`` (this migration's transaction only).
LOCK_TIMEOUT = "5s"


def _build(name: str, columns: str) -> None:
    """``CREATE INDEX IF NOT EXISTS``, but an invalid index of that name (a failed concurrent
    build) is dropped first and built again."""
    valid = (
        op.get_bind()
        .execute(text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name})
        .scalar_one_or_none()
    )
    if valid is False:
        op.execute(f"DROP INDEX {name}")
    op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON activities ({columns}) WHERE {PREDICATE}")


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    # IF NOT EXISTS: an operator may have built it beforehand with CONCURRENTLY (docs/operations.md).
    _build(INDEX, "tenant_id, occurred_at")


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    # Kept by the upgrade; built again should it be gone (dropped by hand, or left invalid).
    _build(OLD, "occurred_at")
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
