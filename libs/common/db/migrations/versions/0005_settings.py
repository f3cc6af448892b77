"""Tenant settings history: every change of a tenant's settings, versioned with who and when.

Revision ID: 0005_settings
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005_settings"
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
        CREATE TABLE tenant_settings_history (
            tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
            version integer NOT NULL,
            settings jsonb NOT NULL,
            changed text[] NOT NULL,
            changed_by text NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, version)
        )
        """
    )


def downgrade() -> None:
    _script("DROP TABLE tenant_settings_history")
