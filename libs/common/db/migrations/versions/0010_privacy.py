"""Data protection: the admin audit log, erasure requests, and retention bookkeeping.

``audit_log`` keeps one row per admin action (who, when, what, on what, before/after with
secrets masked); it is append-only and read by ``GET /v1/audit``. ``privacy_erasures`` keeps
each erasure request with a keyed hash of the identity (never the identity in clear), its
progress and its counts. ``privacy_erased_identities`` is the list ingest and attribution check:
the requested identity and every other address or phone of the person's CRM contacts, hashed. ``retention_purges`` keeps what each scheduled purge removed.

Revision ID: 0010_privacy
Revises: 0009_settings
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010_privacy"
down_revision = "0009_settings"
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
        CREATE TABLE audit_log (
            audit_id bigserial PRIMARY KEY,
            tenant_id text NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            actor text NOT NULL,
            credential text NOT NULL,
            action text NOT NULL,
            target text NOT NULL DEFAULT '',
            before jsonb,
            after jsonb
        );
        CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, at DESC, audit_id DESC);
        CREATE TABLE privacy_erasures (
            tenant_id text NOT NULL,
            erasure_id uuid NOT NULL,
            identity_kind text NOT NULL CHECK (identity_kind IN ('email', 'phone')),
            identity_hash text NOT NULL,
            state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
            requested_by text NOT NULL,
            requested_at timestamptz NOT NULL DEFAULT now(),
            heartbeat_at timestamptz,
            finished_at timestamptz,
            done integer NOT NULL DEFAULT 0,
            total integer,
            counts jsonb NOT NULL DEFAULT '{}'::jsonb,
            error text,
            PRIMARY KEY (tenant_id, erasure_id)
        );
        CREATE UNIQUE INDEX privacy_erasures_identity ON privacy_erasures (tenant_id, identity_hash);
        CREATE TABLE privacy_erased_identities (
            tenant_id text NOT NULL,
            identity_hash text NOT NULL,
            erasure_id uuid NOT NULL,
            PRIMARY KEY (tenant_id, identity_hash)
        );
        CREATE TABLE retention_purges (
            purge_id bigserial PRIMARY KEY,
            tenant_id text NOT NULL,
            ran_at timestamptz NOT NULL DEFAULT now(),
            cutoff timestamptz NOT NULL,
            counts jsonb NOT NULL
        );
        CREATE INDEX retention_purges_tenant ON retention_purges (tenant_id, ran_at DESC)
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE retention_purges, privacy_erased_identities, privacy_erasures, audit_log")
