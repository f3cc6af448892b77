"""Attribution on real CRM data: one rep per person across sources, phones as sent.

* ``ref_reps.source``: the feed a rep came from (canonical sync, a CRM, a dialer); it ranks
  which id of one person is the canonical one.
* ``ref_reps.alias_of``: set on a rep that is the same person as another (same verified email,
  or the tenant's explicit mapping); kept apart from the CRM's own ``merged_into`` so that the
  source's next update does not undo it.
* ``raw_phones`` on reps and contacts: the phones as the source sent them, for display (the
  ``phones`` column holds E.164, which is what is matched).

Revision ID: 0008_attribution
Revises: 0007_connectors
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008_attribution"
down_revision = "0007_connectors"
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
        ALTER TABLE ref_reps ADD COLUMN source text NOT NULL DEFAULT '';
        ALTER TABLE ref_reps ADD COLUMN alias_of text;
        ALTER TABLE ref_reps ADD COLUMN raw_phones text[] NOT NULL DEFAULT '{}';
        ALTER TABLE ref_contacts ADD COLUMN raw_phones text[] NOT NULL DEFAULT '{}';
        CREATE INDEX ref_reps_alias_of ON ref_reps (tenant_id, alias_of) WHERE alias_of IS NOT NULL
        """
    )


def downgrade() -> None:
    _script(
        """
        DROP INDEX ref_reps_alias_of;
        ALTER TABLE ref_contacts DROP COLUMN raw_phones;
        ALTER TABLE ref_reps DROP COLUMN raw_phones;
        ALTER TABLE ref_reps DROP COLUMN alias_of;
        ALTER TABLE ref_reps DROP COLUMN source
        """
    )
