"""Activities by participant (``activities_participants``: a GIN index on
``activity_identities(tenant_id, payload -> 'participants')``, each participant's address and
number under its tenant) and contacts by account (``ref_contacts_by_account``), which a re-match
window reads (``repository.windowed_activities``, issue #14).

A deal change re-decides the activities of every contact of the deal (a role) and of its account,
whichever account they were decided on (a meeting with buyers of two accounts, decided on the
first while only its deal was known). Before, a contact of another account put her identities on a
branch that read every activity of the tenant in the window, one row at a time through
``payload -> 'participants'`` (0.27-0.96 s on 200,000 activities); through this index each of
the window's identities reads her own activities alone (a few index pages each). 200,000 activities in the
window, 21 contacts: 200,035 ``activities`` rows, 7,210 buffers and 669 ms before; 35 rows, 211
buffers and 18 ms now (631 buffers and 78 ms while the index's pending list holds 420 pages of
recent inserts, before autovacuum merges it). ``test_attribution_rematch_window_reads.py``
counts the rows (40,012 before, 6 now).

The index holds the participants' addresses and numbers alone (about three keys an activity), not
names, roles or answers, nor the rest of the payload. A plain ``CREATE INDEX`` (no migration here
runs outside a transaction): writes to ``activities`` wait while it builds; on a large table build
it first with ``CONCURRENTLY`` (docs/operations.md, Upgrading with migrations), which this
migration then keeps. An invalid index left by a failed concurrent build (``pg_index.indisvalid``
false: never used, yet ``IF NOT EXISTS`` would find it) is dropped and built again. Each statement
waits at most ``LOCK_TIMEOUT`` for its lock: past it the migration fails, nothing changed; run it
again.

Revision ID: 0053_activities_by_participant
Revises: 0052_metric_deferred_events
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

revision = "0053_activities_by_participant"
down_revision = "0052_metric_deferred_events"
branch_labels = None
depends_on = None

LOCK_TIMEOUT = "5s"
#: An activity's participants' addresses and numbers, each as "<tenant> <identity>" (a tenant id
#: holds no space): ``activities_participants`` holds these keys, and the re-match asks for them
#: (``repository.windowed_activities``), so an identity of one tenant reads none of another's
#: activities. A participant's ``email`` and ``phone`` alike, as the rows were read before
#: (``p ->> 'email' = identity OR p ->> 'phone' = identity``); anything but an array holds none.
FUNCTION = """
CREATE OR REPLACE FUNCTION activity_identities(tenant text, participants jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT tenant || ' ' || x.identity), '{}')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(participants) = 'array' THEN participants
                                   ELSE '[]'::jsonb END) p
    CROSS JOIN LATERAL (VALUES (p ->> 'email'), (p ->> 'phone')) AS x(identity)
    WHERE x.identity IS NOT NULL
$$
"""
#: index name -> its table and definition after ``ON``.
INDEXES = {
    "activities_participants": "activities USING gin (activity_identities(tenant_id, payload -> 'participants'))",
    "ref_contacts_by_account": "ref_contacts (tenant_id, account_id)",
}


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute(FUNCTION)
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
    op.execute("DROP FUNCTION IF EXISTS activity_identities(text, jsonb)")
