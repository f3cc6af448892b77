"""The contacts of an account that state no country of their own, found by the account: ingest
reads them again when their account's country changes (``repository.contacts_without_country``,
in a CRM sync or a webhook request). Without it that lookup filtered every contact of the tenant.

A plain ``CREATE INDEX`` (no migration here runs outside a transaction): it blocks writes to
``ref_contacts`` while it builds; on a large table build it first with ``CONCURRENTLY``
(docs/operations.md, Upgrading with migrations), which this migration then keeps.

Revision ID: 0027_contacts_by_account
Revises: 0026_activity_source_deals
Create Date: 2026-12-04
"""

from alembic import op

revision = "0027_contacts_by_account"
down_revision = "0026_activity_source_deals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS: an operator may have built it beforehand with CONCURRENTLY (docs/operations.md).
    op.execute(
        "CREATE INDEX IF NOT EXISTS ref_contacts_without_country_by_account "
        "ON ref_contacts (tenant_id, account_id, contact_id) "
        "WHERE country IS NULL AND NOT deleted AND merged_into IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ref_contacts_without_country_by_account")
