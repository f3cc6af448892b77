"""A rep who left and came back: the spells she was away, per identity she held.

A rep the CRM deletes or deactivates has left: her emails and phones move to
``ref_rep_former_identities`` with ``until`` = when she left, hers only before then (0018). When
she is reactivated (a newer version, live and active) she holds her addresses again; until now
the departure was forgotten, so a re-match credited her with what her addresses took part in
while she was away (a buyer's mail to her while she was gone, which the deal's owner of the time
had). A row here says that ``identity`` did not name ``rep_id`` in [``left_at``, ``returned_at``):
written when she comes back, one row per identity she held when she left, so that leaving twice
keeps both gaps. Nothing to backfill: the departures of the reps already back were not kept.

Revision ID: 0021_rep_absences
Revises: 0020_deal_owner_history
Create Date: 2026-12-04
"""

from alembic import op

revision = "0021_rep_absences"
down_revision = "0020_deal_owner_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ref_rep_absences (
            tenant_id text NOT NULL,
            identity text NOT NULL,
            rep_id text NOT NULL,
            left_at timestamptz NOT NULL,
            returned_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, identity, rep_id, left_at),
            CHECK (left_at < returned_at)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE ref_rep_absences")
