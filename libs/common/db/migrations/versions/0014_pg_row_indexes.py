"""Fewer index entries per event: ``attributions_time`` goes, the seen ledger's age index is a BRIN.

Each event wrote one entry in every index of ``attributions`` and ``ingest_seen_events``
(one WAL record and a B-tree descent each):

* ``attributions_time (tenant_id, occurred_at DESC, activity_id)`` had one reader, the
  retention purge. An attribution is written in the same transaction as its ``activities``
  row, and erasure deletes both together, so the purge now deletes a batch of activities
  (found by ``activities_time``) with their attributions, superseded versions and overrides,
  keyed by the same ids (``services/metrics/adapters/retention.py``). Only an attribution left
  without its activity by an older purge interrupted between its two tables would now stay.
* ``ingest_seen_events_age (seen_at)`` is read only by the ledger prune
  (``DELETE ... WHERE seen_at < cutoff``, every tenant at once). ``seen_at`` is the insert time,
  so it follows the table's physical order: a BRIN index serves that range as well and is only
  written when a block range is summarised, not on every insert.

Downgrade builds both B-trees again.

Revision ID: 0014_pg_row_indexes
Revises: 0013_attr_history_superseded
Create Date: 2026-12-03
"""

from alembic import op

revision = "0014_pg_row_indexes"
down_revision = "0013_attr_history_superseded"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX attributions_time")
    op.execute("DROP INDEX ingest_seen_events_age")
    op.execute(
        "CREATE INDEX ingest_seen_events_age ON ingest_seen_events USING brin (seen_at) "
        "WITH (autosummarize = on)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ingest_seen_events_age")
    op.execute("CREATE INDEX ingest_seen_events_age ON ingest_seen_events (seen_at)")
    op.execute("CREATE INDEX attributions_time ON attributions (tenant_id, occurred_at DESC, activity_id)")
