"""Read models the metrics service materialises for the gateway: period stats and insights.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _script(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _script(
        """
        CREATE TABLE insight_thresholds (
            tenant_id text NOT NULL,
            version integer NOT NULL,
            thresholds jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_by text NOT NULL DEFAULT 'system',
            PRIMARY KEY (tenant_id, version)
        );
        CREATE TABLE scoring_state (
            tenant_id text PRIMARY KEY,
            applied_version integer NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE metric_refresh_state (
            tenant_id text PRIMARY KEY,
            dirty_since timestamptz,
            refreshed_at timestamptz
        );
        CREATE TABLE rep_period_stats (
            tenant_id text NOT NULL,
            granularity text NOT NULL,
            period_start date NOT NULL,
            rep_id text NOT NULL,
            team_id text,
            score double precision NOT NULL,
            team_percentile double precision,
            baseline_score double precision,
            baseline_periods integer NOT NULL DEFAULT 0,
            change_vs_baseline double precision,
            computed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, granularity, period_start, rep_id)
        );
        CREATE INDEX rep_period_stats_team ON rep_period_stats (tenant_id, granularity, period_start, team_id);
        CREATE TABLE insights (
            tenant_id text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('at_risk_rep', 'stale_deal', 'bright_spot')),
            subject_id text NOT NULL,
            team_id text,
            period_start date,
            reasons text[] NOT NULL DEFAULT '{}',
            details jsonb NOT NULL DEFAULT '{}'::jsonb,
            computed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, kind, subject_id)
        );
        CREATE INDEX metric_contributions_deal ON metric_contributions (tenant_id, deal_id, occurred_at)
            WHERE deal_id IS NOT NULL
        """
    )


def downgrade() -> None:
    _script(
        """
        DROP INDEX metric_contributions_deal;
        DROP TABLE insights, rep_period_stats, metric_refresh_state, scoring_state, insight_thresholds
        """
    )
