"""Initial schema: tenants and keys, CRM reference data, activities, attributions, metric rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "0001"
down_revision = None
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


def _script(sql: str) -> None:
    # asyncpg prepares each statement, so a script runs one statement at a time.
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _script(
        """
        CREATE TABLE tenants (
            tenant_id text PRIMARY KEY,
            name text NOT NULL DEFAULT '',
            timezone text NOT NULL DEFAULT 'UTC',
            fiscal_year_start_month smallint NOT NULL DEFAULT 1
                CHECK (fiscal_year_start_month BETWEEN 1 AND 12),
            settings jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE api_keys (
            key_id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
            name text NOT NULL DEFAULT '',
            scopes text[] NOT NULL,
            key_hash text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
        CREATE TABLE webhook_secrets (
            secret_id bigserial PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
            source text NOT NULL,
            secret_encrypted text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz
        );
        CREATE INDEX webhook_secrets_lookup ON webhook_secrets (tenant_id, source);
        CREATE TABLE webhook_state (
            tenant_id text NOT NULL,
            source text NOT NULL,
            object_key text NOT NULL,
            state jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, source, object_key)
        );

        CREATE TABLE ref_reps (
            tenant_id text NOT NULL,
            rep_id text NOT NULL,
            name text NOT NULL DEFAULT '',
            emails text[] NOT NULL DEFAULT '{}',
            phones text[] NOT NULL DEFAULT '{}',
            active boolean NOT NULL DEFAULT true,
            manager_id text,
            updated_at timestamptz NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            merged_into text,
            PRIMARY KEY (tenant_id, rep_id)
        );
        CREATE TABLE ref_rep_identities (
            tenant_id text NOT NULL,
            identity text NOT NULL,
            rep_id text NOT NULL,
            PRIMARY KEY (tenant_id, identity, rep_id)
        );
        CREATE TABLE ref_teams (
            tenant_id text NOT NULL,
            team_id text NOT NULL,
            name text NOT NULL DEFAULT '',
            parent_id text,
            updated_at timestamptz NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            PRIMARY KEY (tenant_id, team_id)
        );
        CREATE TABLE ref_team_memberships (
            tenant_id text NOT NULL,
            membership_id text NOT NULL,
            rep_id text NOT NULL,
            team_id text NOT NULL,
            valid_from date NOT NULL,
            valid_to date,
            updated_at timestamptz NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            PRIMARY KEY (tenant_id, membership_id)
        );
        CREATE INDEX ref_team_memberships_rep ON ref_team_memberships (tenant_id, rep_id);
        CREATE INDEX ref_team_memberships_team ON ref_team_memberships (tenant_id, team_id);
        CREATE TABLE ref_accounts (
            tenant_id text NOT NULL,
            account_id text NOT NULL,
            name text NOT NULL DEFAULT '',
            domains text[] NOT NULL DEFAULT '{}',
            updated_at timestamptz NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            merged_into text,
            PRIMARY KEY (tenant_id, account_id)
        );
        CREATE TABLE ref_account_domains (
            tenant_id text NOT NULL,
            domain text NOT NULL,
            account_id text NOT NULL,
            PRIMARY KEY (tenant_id, domain, account_id)
        );
        CREATE TABLE ref_contacts (
            tenant_id text NOT NULL,
            contact_id text NOT NULL,
            name text NOT NULL DEFAULT '',
            emails text[] NOT NULL DEFAULT '{}',
            phones text[] NOT NULL DEFAULT '{}',
            account_id text,
            updated_at timestamptz NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            merged_into text,
            PRIMARY KEY (tenant_id, contact_id)
        );
        CREATE TABLE ref_contact_identities (
            tenant_id text NOT NULL,
            identity text NOT NULL,
            contact_id text NOT NULL,
            PRIMARY KEY (tenant_id, identity, contact_id)
        );
        CREATE TABLE ref_deals (
            tenant_id text NOT NULL,
            deal_id text NOT NULL,
            name text NOT NULL DEFAULT '',
            account_id text,
            owner_rep_id text,
            stage text NOT NULL DEFAULT '',
            amount numeric,
            is_closed boolean NOT NULL DEFAULT false,
            is_won boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL,
            closed_at timestamptz,
            contacts jsonb NOT NULL DEFAULT '[]'::jsonb,
            updated_at timestamptz NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            merged_into text,
            PRIMARY KEY (tenant_id, deal_id)
        );
        CREATE INDEX ref_deals_account ON ref_deals (tenant_id, account_id);
        CREATE TABLE ref_deal_contacts (
            tenant_id text NOT NULL,
            deal_id text NOT NULL,
            contact_id text NOT NULL,
            role text NOT NULL DEFAULT '',
            PRIMARY KEY (tenant_id, deal_id, contact_id)
        );
        CREATE INDEX ref_deal_contacts_contact ON ref_deal_contacts (tenant_id, contact_id);

        CREATE TABLE activities (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            source text NOT NULL,
            external_id text NOT NULL,
            kind text NOT NULL,
            direction text NOT NULL,
            outcome text NOT NULL,
            occurred_at timestamptz NOT NULL,
            duration_seconds integer NOT NULL DEFAULT 0,
            revision bigint NOT NULL DEFAULT 0,
            thread_id text,
            ical_uid text,
            automated boolean NOT NULL DEFAULT false,
            payload jsonb NOT NULL,
            ingested_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, activity_id)
        );
        CREATE INDEX activities_time ON activities (tenant_id, occurred_at);
        CREATE INDEX activities_thread ON activities (tenant_id, thread_id) WHERE thread_id IS NOT NULL;

        CREATE TABLE attributions (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            version integer NOT NULL,
            status text NOT NULL,
            rep_id text,
            team_id text,
            account_id text,
            deal_id text,
            secondary_deal_ids text[] NOT NULL DEFAULT '{}',
            confidence double precision NOT NULL,
            explanation jsonb NOT NULL DEFAULT '{}'::jsonb,
            is_override boolean NOT NULL DEFAULT false,
            decided_at timestamptz NOT NULL,
            parked_until timestamptz,
            occurred_at timestamptz NOT NULL,
            kind text NOT NULL,
            PRIMARY KEY (tenant_id, activity_id)
        );
        CREATE INDEX attributions_rep ON attributions (tenant_id, rep_id, occurred_at DESC, activity_id);
        CREATE INDEX attributions_deal ON attributions (tenant_id, deal_id, occurred_at DESC, activity_id);
        CREATE INDEX attributions_account ON attributions (tenant_id, account_id, occurred_at DESC, activity_id);
        CREATE INDEX attributions_time ON attributions (tenant_id, occurred_at DESC, activity_id);
        CREATE INDEX attributions_parked ON attributions (tenant_id, parked_until) WHERE parked_until IS NOT NULL;
        CREATE TABLE attribution_history (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            version integer NOT NULL,
            status text NOT NULL,
            rep_id text,
            team_id text,
            account_id text,
            deal_id text,
            confidence double precision NOT NULL,
            explanation jsonb NOT NULL,
            is_override boolean NOT NULL DEFAULT false,
            decided_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, activity_id, version)
        );
        CREATE TABLE attribution_overrides (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            deal_id text,
            rep_id text,
            account_id text,
            set_by text NOT NULL,
            set_at timestamptz NOT NULL,
            reason text,
            PRIMARY KEY (tenant_id, activity_id)
        );

        CREATE TABLE scoring_models (
            tenant_id text NOT NULL,
            version integer NOT NULL,
            model jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_by text NOT NULL DEFAULT 'system',
            PRIMARY KEY (tenant_id, version)
        );
        """
    )
    counters = ",\n".join(f"{c} bigint NOT NULL DEFAULT 0" for c in COUNTERS)
    _script(
        f"""
        CREATE TABLE metric_contributions (
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            version integer NOT NULL,
            rep_id text,
            team_id text,
            deal_id text,
            account_id text,
            status text NOT NULL,
            occurred_at timestamptz NOT NULL,
            day date,
            kind text,
            contact_ids text[] NOT NULL DEFAULT '{{}}',
            {counters},
            score double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, activity_id)
        );
        CREATE INDEX metric_contributions_time ON metric_contributions (tenant_id, occurred_at);
        CREATE TABLE metric_rollups (
            tenant_id text NOT NULL,
            level text NOT NULL CHECK (level IN ('rep', 'team', 'deal', 'account')),
            entity_id text NOT NULL,
            granularity text NOT NULL CHECK (granularity IN ('day', 'week', 'month', 'quarter')),
            period_start date NOT NULL,
            {counters},
            score double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, level, granularity, period_start, entity_id)
        );
        CREATE INDEX metric_rollups_entity ON metric_rollups (tenant_id, level, entity_id, granularity, period_start);
        """
    )


def downgrade() -> None:
    _script(
        """
        DROP TABLE metric_rollups, metric_contributions, scoring_models, attribution_overrides,
            attribution_history, attributions, activities, ref_deal_contacts, ref_deals,
            ref_contact_identities, ref_contacts, ref_account_domains, ref_accounts,
            ref_team_memberships, ref_teams, ref_rep_identities, ref_reps, webhook_state,
            webhook_secrets, api_keys, tenants;
        """
    )
