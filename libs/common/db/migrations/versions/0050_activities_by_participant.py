"""Activities by participant (``activities_participants``: a GIN index, ``jsonb_path_ops``, on
``payload -> 'participants'``) and contacts by account (``ref_contacts_by_account``), which a
re-match window reads (``repository.windowed_activities``, issue #14).

A deal change re-decides the activities of every contact of the deal (a role) and of its account,
whichever account they were decided on (a meeting with buyers of two accounts, decided on the
first while only its deal was known). Before, a contact of another account put her identities on a
branch that read every activity of the tenant in the window, one row at a time through
``payload -> 'participants'`` (0.27-0.96 s on 200,000 activities); through this index each identity
reads her own activities alone (``participants @> [{"email": ...}]``, or ``"phone"``). In the
test with 20,000 other activities in the window: 40,012 ``activities`` rows read before, 6 now (the 6 found)
(``test_attribution_rematch_window_reads.py``).

The index holds one key per value of each participant (address, phone, name, role, answer), not
the rest of the payload. A plain ``CREATE INDEX`` (no migration here runs outside a transaction):
writes to ``activities`` wait while it builds; on a large table build it first with
``CONCURRENTLY`` (docs/operations.md, Upgrading with migrations), which this migration then
keeps. An invalid index left by a failed concurrent build (``pg_index.indisvalid`` false: never
used, yet ``IF NOT EXISTS`` would find it) is dropped and built again. Each statement waits at
most ``LOCK_TIMEOUT`` for its lock: past it the migration fails, nothing changed; run it again.

Revision ID: 0050_activities_by_participant
Revises: 0049_rep_former_holdings
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

revision = "0050_activities_by_participant"
down_revision = "0049_rep_former_holdings"
branch_labels = None
depends_on = None

LOCK_TIMEOUT = "5s"
#: index name -> its table and definition after ``ON``.
INDEXES = {
    "activities_participants": "activities USING gin ((payload -> 'participants') jsonb_path_ops)",
    "ref_contacts_by_account": "ref_contacts (tenant_id, account_id)",
}


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    for name, definition in INDEXES.items():
        valid = (
            op.get_bind()
            .execute(text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name})
            .scalar_one_or_none()
        )
        if valid is False:
            op.execute(f"DROP INDEX {name}")
        # IF NOT EXISTS: an operator may have built it beforehand with CONCURRENTLY.
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
