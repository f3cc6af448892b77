"""Attribution history holds superseded versions only; ``attribution_history`` is a view.

Every decision used to write an ``attributions`` row and an identical ``attribution_history``
row: twice the write volume (the explanation is most of each row) for a copy of what the
current table already holds. The table of past versions is now ``attribution_superseded``:
when a new version replaces the current one, the statement that writes it copies the row it
replaces there, so a first decision writes one row. ``attribution_history`` becomes a view,
the current row and the superseded ones, with the columns it had: every reader sees every
version exactly as before.

Upgrade drops from the history the row equal to each current version; downgrade copies the
current versions back into the table.

Revision ID: 0013_attr_history_superseded (alembic_version holds 32 characters)
Revises: 0012b_metrics_writes
Create Date: 2026-12-02
"""

from alembic import op

revision = "0013_attr_history_superseded"
down_revision = "0012b_metrics_writes"
branch_labels = None
depends_on = None

#: The columns of a version, current or superseded.
_COLUMNS = (
    "tenant_id, activity_id, version, status, rep_id, team_id, account_id, deal_id, confidence, "
    "explanation, is_override, decided_at"
)


def _script(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _script(
        f"""
        ALTER TABLE attribution_history RENAME TO attribution_superseded;
        ALTER INDEX attribution_history_pkey RENAME TO attribution_superseded_pkey;
        DELETE FROM attribution_superseded s USING attributions a
        WHERE s.tenant_id = a.tenant_id AND s.activity_id = a.activity_id AND s.version = a.version;
        CREATE VIEW attribution_history AS
            SELECT {_COLUMNS} FROM attributions
            UNION ALL
            SELECT {_COLUMNS} FROM attribution_superseded
        """
    )


def downgrade() -> None:
    _script(
        f"""
        DROP VIEW attribution_history;
        INSERT INTO attribution_superseded ({_COLUMNS}) SELECT {_COLUMNS} FROM attributions
            ON CONFLICT DO NOTHING;
        ALTER INDEX attribution_superseded_pkey RENAME TO attribution_history_pkey;
        ALTER TABLE attribution_superseded RENAME TO attribution_history
        """
    )
