"""Dashboard sessions: a short-lived cookie exchanged once for an API key or a JWT.

A session row names the API key it came from (``key_id``; NULL for a JWT), so revoking the key
ends its sessions, and deleting a tenant deletes them. Only an HMAC of the cookie is stored.

Revision ID: 0005_auth
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005_auth"
down_revision = "0004"
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
        CREATE TABLE gateway_sessions (
            session_id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
            token_hash text NOT NULL,
            subject text NOT NULL,
            key_id text REFERENCES api_keys ON DELETE CASCADE,
            scopes text[] NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz
        );
        CREATE INDEX gateway_sessions_subject ON gateway_sessions (tenant_id, subject, expires_at)
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE gateway_sessions")
