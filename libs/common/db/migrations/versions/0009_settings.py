"""Tenant settings history (every change, with who and when), the background jobs a change
starts (with progress), and the calendar each tenant's rollups are built in.

Revision ID: 0009_settings
Revises: 0008_attribution
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009_settings"
down_revision = "0008_attribution"
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
        );
        CREATE TABLE settings_jobs (
            job_id uuid PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
            kind text NOT NULL,
            parameters jsonb NOT NULL DEFAULT '{}'::jsonb,
            settings_version integer,
            state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
            done bigint NOT NULL DEFAULT 0,
            total bigint,
            result jsonb,
            error text,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz
        );
        CREATE INDEX settings_jobs_queued ON settings_jobs (kind, created_at) WHERE state = 'queued';
        CREATE INDEX settings_jobs_tenant ON settings_jobs (tenant_id, created_at);
        CREATE TABLE metric_rollup_calendars (
            tenant_id text PRIMARY KEY,
            time_zone text NOT NULL,
            fiscal_year_start_month smallint NOT NULL,
            rebuilt_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    _script("DROP TABLE metric_rollup_calendars, settings_jobs, tenant_settings_history")
