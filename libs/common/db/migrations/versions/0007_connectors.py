"""Mail and calendar connectors: connections (encrypted credentials) and per-mailbox sync state.

``connector_mailboxes`` is the connectors' own state table: one row per (tenant, provider,
mailbox) with the incremental cursor (Gmail ``historyId``, Calendar ``syncToken``, Graph
``deltaLink``), the full sync in progress (a backfill or a resync, resumable by its page
token), the push subscription, health, and a lease so that several connector processes never
sync one mailbox at once. Ingest's push route only sets ``sync_requested_at``.

Revision ID: 0007_connectors
Revises: 0006_hardening
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007_connectors"
down_revision = "0006_hardening"
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
        CREATE TABLE connector_connections (
            connection_id bigserial PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
            vendor text NOT NULL,
            credentials_encrypted text NOT NULL,
            options jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE connector_mailboxes (
            mailbox_id bigserial PRIMARY KEY,
            connection_id bigint NOT NULL REFERENCES connector_connections ON DELETE CASCADE,
            tenant_id text NOT NULL,
            provider text NOT NULL,
            address text NOT NULL,
            cursor text,
            backfill_since timestamptz,
            full_sync_since timestamptz,
            full_sync_page_token text,
            full_sync_cursor text,
            subscription_id text,
            subscription_expires_at timestamptz,
            sync_requested_at timestamptz,
            next_sync_at timestamptz NOT NULL DEFAULT now(),
            leased_until timestamptz,
            last_success_at timestamptz,
            last_error text,
            last_error_at timestamptz,
            failures integer NOT NULL DEFAULT 0,
            paused boolean NOT NULL DEFAULT false,
            fetched bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, provider, address)
        );
        CREATE INDEX connector_mailboxes_due ON connector_mailboxes (next_sync_at) WHERE NOT paused;
        CREATE INDEX connector_mailboxes_subscription ON connector_mailboxes (tenant_id, subscription_id)
            WHERE subscription_id IS NOT NULL
        """
    )


def downgrade() -> None:
    _script(
        """
        DROP TABLE connector_mailboxes;
        DROP TABLE connector_connections
        """
    )
