"""Insights a leader can trust: the deals an activity engages, and silent or thin reps' stats.

``metric_contributions.engaged_deal_ids`` holds the one definition of "activity on a deal"
(``services/metrics/domain/definitions.engaged_deal_ids``): the deal of an attributed or
ambiguous counted activity and its secondary deals. The stale-deal insight and the deal
timeline both read it. Existing rows are backfilled from the current attribution when it is
the version the contribution holds (otherwise from the credited deal; the next version of
the activity rewrites the row anyway).

``rep_period_stats`` gains the period's activity count and ``insufficient_data`` (fewer
trailing periods with data than ``min_baseline_periods``: a new rep, typically), and the
current period's ``recency_score`` (the scoring model's decay applied as of today).

``metric_rollups`` gains the level ``team_rep`` (entity id ``team_id || chr(31) || rep_id``):
a rep's work on one team, which a team's leaderboard ranks by. Existing contributions are
rolled up into it at every grain (weeks ISO, quarters from the tenant's fiscal start month).

``activity_goals`` holds the goals a tenant sets (through the gateway's admin API or
``spm goals``); ``goal_attainment`` the metrics service's measure of each rep against them,
for the current and the last complete period of each granularity.

``insight_changes`` is the outbox of ``insight-changed``: the refresher writes a row when an
insight appears or clears, in the transaction that replaces the insights; the publisher
sends it and stamps ``published_at``.

``alert_webhooks`` are a tenant's outbound webhooks (Standard Webhooks signing secret, body
format); ``manager_digests`` each manager's weekly digest, computed once the week is over;
``alert_deliveries`` one row per (webhook, change or digest) with its attempts and backoff.

Revision ID: 0011_insights
Revises: 0010_privacy
Create Date: 2026-12-02
"""

from alembic import op

revision = "0011_insights"
down_revision = "0010_privacy"
branch_labels = None
depends_on = None


COUNTERS = (
    "activities",
    "dials",
    "connects",
    "conversations",
    "talk_seconds",
    "emails_sent",
    "emails_received",
    "buyer_replies",
    "meetings_booked",
    "meetings_held",
    "meetings_cancelled",
    "meetings_no_show",
    "internal_meetings_held",
)

_PERIOD_START = """CASE g.granularity
    WHEN 'day' THEN c.day
    WHEN 'week' THEN date_trunc('week', c.day)::date
    WHEN 'month' THEN date_trunc('month', c.day)::date
    ELSE (date_trunc('month', c.day) - make_interval(
        months => (extract(month FROM c.day)::int - COALESCE(t.fiscal_year_start_month, 1) + 12) % 3))::date
    END"""


def _script(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _script(
        """
        ALTER TABLE metric_contributions ADD COLUMN engaged_deal_ids text[] NOT NULL DEFAULT '{}';
        UPDATE metric_contributions SET engaged_deal_ids = ARRAY[deal_id]
            WHERE deal_id IS NOT NULL AND activities > 0;
        UPDATE metric_contributions mc
            SET engaged_deal_ids = ARRAY(
                SELECT DISTINCT d FROM unnest(array_remove(ARRAY[a.deal_id], NULL) || a.secondary_deal_ids) AS d
                ORDER BY d)
            FROM attributions a
            WHERE a.tenant_id = mc.tenant_id AND a.activity_id = mc.activity_id AND a.version = mc.version
              AND mc.activities > 0 AND a.status IN ('attributed', 'ambiguous');
        CREATE INDEX metric_contributions_engaged ON metric_contributions USING gin (engaged_deal_ids);
        ALTER TABLE rep_period_stats
            ADD COLUMN activities integer NOT NULL DEFAULT 0,
            ADD COLUMN insufficient_data boolean NOT NULL DEFAULT false,
            ADD COLUMN recency_score double precision;
        ALTER TABLE metric_rollups DROP CONSTRAINT metric_rollups_level_check;
        ALTER TABLE metric_rollups ADD CONSTRAINT metric_rollups_level_check
            CHECK (level IN ('rep', 'team', 'deal', 'account', 'team_rep'));
        CREATE TABLE activity_goals (
            tenant_id text NOT NULL,
            goal_id text NOT NULL,
            scope text NOT NULL CHECK (scope IN ('rep', 'team', 'tenant')),
            subject_id text,
            period text NOT NULL CHECK (period IN ('day', 'week', 'month', 'quarter')),
            metric text NOT NULL,
            target double precision NOT NULL CHECK (target > 0),
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by text NOT NULL DEFAULT 'system',
            PRIMARY KEY (tenant_id, goal_id)
        );
        CREATE TABLE goal_attainment (
            tenant_id text NOT NULL,
            granularity text NOT NULL,
            period_start date NOT NULL,
            rep_id text NOT NULL,
            metric text NOT NULL,
            goal_id text NOT NULL,
            target double precision NOT NULL,
            actual double precision NOT NULL,
            attainment double precision NOT NULL,
            expected_by_now double precision NOT NULL,
            pace double precision,
            days_left integer NOT NULL,
            complete boolean NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, granularity, period_start, rep_id, metric)
        );
        CREATE TABLE insight_changes (
            change_id bigserial PRIMARY KEY,
            tenant_id text NOT NULL,
            change text NOT NULL CHECK (change IN ('appeared', 'cleared')),
            kind text NOT NULL,
            subject_id text NOT NULL,
            team_id text,
            period_start date,
            reasons text[] NOT NULL DEFAULT '{}',
            details jsonb NOT NULL DEFAULT '{}'::jsonb,
            changed_at timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz
        );
        CREATE INDEX insight_changes_unpublished ON insight_changes (change_id) WHERE published_at IS NULL;
        CREATE TABLE alert_webhooks (
            tenant_id text NOT NULL,
            webhook_id text NOT NULL,
            url text NOT NULL,
            format text NOT NULL CHECK (format IN ('standard', 'slack')),
            secret text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_by text NOT NULL DEFAULT 'system',
            PRIMARY KEY (tenant_id, webhook_id)
        );
        CREATE TABLE manager_digests (
            tenant_id text NOT NULL,
            manager_id text NOT NULL,
            week_start date NOT NULL,
            digest jsonb NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, manager_id, week_start)
        );
        CREATE TABLE alert_deliveries (
            delivery_id bigserial PRIMARY KEY,
            tenant_id text NOT NULL,
            webhook_id text NOT NULL,
            change_id bigint,
            digest_manager_id text,
            digest_week date,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            gave_up_at timestamptz,
            last_error text,
            CHECK ((change_id IS NULL) <> (digest_manager_id IS NULL AND digest_week IS NULL)),
            UNIQUE (tenant_id, webhook_id, change_id),
            UNIQUE (tenant_id, webhook_id, digest_manager_id, digest_week)
        );
        CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at)
            WHERE delivered_at IS NULL AND gave_up_at IS NULL
        """
    )
    columns = ", ".join(COUNTERS)
    sums = ", ".join(f"sum(c.{column})" for column in COUNTERS)
    op.execute(
        f"""
        INSERT INTO metric_rollups (tenant_id, level, entity_id, granularity, period_start, {columns}, score)
        SELECT c.tenant_id, 'team_rep', c.team_id || chr(31) || c.rep_id, g.granularity, {_PERIOD_START},
               {sums}, sum(c.score)
        FROM metric_contributions c
        LEFT JOIN tenants t ON t.tenant_id = c.tenant_id
        CROSS JOIN (VALUES ('day'), ('week'), ('month'), ('quarter')) AS g(granularity)
        WHERE c.team_id IS NOT NULL AND c.rep_id IS NOT NULL AND c.day IS NOT NULL AND c.activities > 0
        GROUP BY 1, 2, 3, 4, 5
        """
    )


def downgrade() -> None:
    _script(
        """
        DROP TABLE alert_deliveries, manager_digests, alert_webhooks, insight_changes, goal_attainment,
            activity_goals;
        DELETE FROM metric_rollups WHERE level = 'team_rep';
        ALTER TABLE metric_rollups DROP CONSTRAINT metric_rollups_level_check;
        ALTER TABLE metric_rollups ADD CONSTRAINT metric_rollups_level_check
            CHECK (level IN ('rep', 'team', 'deal', 'account'));
        ALTER TABLE rep_period_stats DROP COLUMN recency_score, DROP COLUMN insufficient_data,
            DROP COLUMN activities;
        DROP INDEX metric_contributions_engaged;
        ALTER TABLE metric_contributions DROP COLUMN engaged_deal_ids
        """
    )
