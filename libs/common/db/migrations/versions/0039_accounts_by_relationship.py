"""The tenant's live accounts by relationship, in id order: ``GET /v1/accounts?relationship=``
(``gateway.adapters.crm.list_accounts``) reads a keyset page of them. Without it each page walked
the tenant's accounts by id and filtered them, every account before the page's last match read
(a tenant's few partners among 100,000 customers: every account, every page).

A plain ``CREATE INDEX`` (no migration here runs outside a transaction): writes to
``ref_accounts`` (attribution's CRM consumer) wait while it builds, and it waits at most
``LOCK_TIMEOUT`` for its lock (past it the migration fails, nothing changed; run it again). On a
large table build it first with ``CONCURRENTLY`` (docs/operations.md, Upgrading with
migrations), which this migration then keeps; an invalid index left by a failed concurrent build
is dropped and built again.

Revision ID: 0039_accounts_by_relationship
Revises: 0038_ingest_time_blocks
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

revision = "0039_accounts_by_relationship"
down_revision = "0038_ingest_time_blocks"
branch_labels = None
depends_on = None

INDEX = "ref_accounts_live_by_relationship"
LOCK_TIMEOUT = "5s"


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    valid = (
        op.get_bind()
        .execute(
            text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": INDEX}
        )
        .scalar_one_or_none()
    )
    if valid is False:
        op.execute(f"DROP INDEX {INDEX}")
    # IF NOT EXISTS: an operator may have built it beforehand with CONCURRENTLY (docs/operations.md).
    op.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON ref_accounts (tenant_id, relationship, account_id) "
        "WHERE relationship IS NOT NULL AND NOT deleted AND merged_into IS NULL"
    )


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
