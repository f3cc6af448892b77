"""CRM records an earlier release stored dated far ahead no longer hold off every later edit.

Newest ``updated_at`` wins in each CRM state table (``ref_reps``, ``ref_teams``,
``ref_team_memberships``, ``ref_accounts``, ``ref_contacts``, ``ref_deals``). Before this release a
record sent dated 2099 (a CRM clock or an export gone wrong) was stored as sent, and every later
real edit, older than 2099, was dropped; the release after it (c889125) re-dated such a version to
its receipt instead. Ingest now leaves a record dated more than ``INGEST_MAX_FUTURE_SKEW_SECONDS``
ahead out (docs/webhooks.md, Times ahead of receipt), but the rows already stored stay frozen: this
migration re-dates each row whose ``updated_at`` is more than a day ahead of the time it runs to
that time, so the CRM's next edit (dated after it) replaces it. A deal's ``closed_at`` more than a
day ahead (sent so, or taken from such an ``updated_at`` for a deal closed without one) is re-dated
alike: no deal closed in the future. Nothing else of a row changes, and nothing is published (the
row's facts are what the CRM sent; attribution's decisions made with them stay).

Downgrade is a no-op: the times replaced are not kept, and a far-future time is no state anyone
needs back.

Revision ID: 0040_crm_times_ahead
Revises: 0039_accounts_by_relationship
Create Date: 2026-12-05
"""

from alembic import op

revision = "0040_crm_times_ahead"
down_revision = "0039_accounts_by_relationship"
branch_labels = None
depends_on = None

#: The CRM state tables whose newest ``updated_at`` wins.
TABLES = ("ref_reps", "ref_teams", "ref_team_memberships", "ref_accounts", "ref_contacts", "ref_deals")
#: How far ahead of the migration a stored time is read as a clock gone wrong (the default of
#: ``INGEST_MAX_FUTURE_SKEW_SECONDS``).
AHEAD = "1 day"


def upgrade() -> None:
    # now() is the transaction's start: one time for every row re-dated.
    for table in TABLES:
        op.execute(f"UPDATE {table} SET updated_at = now() WHERE updated_at > now() + interval '{AHEAD}'")
    op.execute(f"UPDATE ref_deals SET closed_at = now() WHERE closed_at > now() + interval '{AHEAD}'")


def downgrade() -> None:
    """Nothing to undo: the far-future times re-dated are not kept (see the module's docstring)."""
