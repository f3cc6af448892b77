"""CRM records an earlier release stored dated far ahead no longer hold off every later edit.

Newest ``updated_at`` wins in each CRM state table (``ref_reps``, ``ref_teams``,
``ref_team_memberships``, ``ref_accounts``, ``ref_contacts``, ``ref_deals``). Before this release a
record sent dated 2099 (a CRM clock or an export gone wrong) was stored as sent, and every later
real edit, older than 2099, was dropped; the release after it (c889125) re-dated such a version to
its receipt instead. Ingest now leaves a record dated more than ``INGEST_MAX_FUTURE_SKEW_SECONDS``
ahead out (docs/webhooks.md, Times ahead of receipt), but the rows already stored stay frozen: this
migration re-dates each row whose ``updated_at`` is more than a day ahead of the time it runs to
that time, so the CRM's next edit (dated after it) replaces it. A deal's ``closed_at`` more than a
day ahead (sent so, or taken from such an ``updated_at`` for a deal closed without one), and a
``created_at`` so far ahead, are re-dated alike: no deal closed, or created, in the future.

The times copied from such a version into the history tables are re-dated by the same rule, else a
contact moved by a 2099 version kept crediting her former account until 2099 (``at < until``) and
the ``until <= EXCLUDED.until`` guards kept every later real move from replacing it:
``ref_deal_owners.since``, ``ref_rep_former_identities.until``, ``ref_contact_former_phones.until``,
``ref_contact_former_accounts.until`` and ``ref_rep_absences``. Where the time is part of the key,
two rows cannot land on one time: of a deal's owners named far ahead the latest is kept (the
owner now; the others owned it only between two far-ahead versions), of a contact's moves far
ahead the earliest (her account before it is where she was for everything until now). A time
re-dated is the migration's, or just after (one microsecond) the latest time of the same key kept
within a day ahead, so the order of a deal's owners, a contact's moves and an absence's start and
end holds. An absence that began far ahead (she left and came back by two far-ahead versions)
covers no time before now and is dropped; one that ended far ahead ends at the migration.

Why a day and not ``INGEST_MAX_FUTURE_SKEW_SECONDS``: a migration reads no service settings, and a
day is that setting's default. A tenant's service set lower keeps rows between the two: they
become past within a day and then hold off no edit.

Nothing else of a row changes, and nothing is published (the row's facts are what the CRM sent;
attribution's decisions made with them stay).

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
    for column in ("closed_at", "created_at"):
        op.execute(f"UPDATE ref_deals SET {column} = now() WHERE {column} > now() + interval '{AHEAD}'")
    for table, column in (("ref_rep_former_identities", "until"), ("ref_contact_former_phones", "until")):
        op.execute(f"UPDATE {table} SET {column} = now() WHERE {column} > now() + interval '{AHEAD}'")
    _redate_keyed("ref_deal_owners", "deal_id", "since", keep=">")
    _redate_keyed("ref_contact_former_accounts", "contact_id", "until", keep="<")
    op.execute(f"DELETE FROM ref_rep_absences WHERE left_at > now() + interval '{AHEAD}'")
    op.execute(
        "UPDATE ref_rep_absences SET returned_at = GREATEST(now(), left_at + interval '1 microsecond') "
        f"WHERE returned_at > now() + interval '{AHEAD}'"
    )


def _redate_keyed(table: str, key: str, column: str, keep: str) -> None:
    """Re-dates ``table``'s ``column`` (part of its primary key with ``key``) far ahead: one row of
    a key's far-ahead ones is kept (the latest when ``keep`` is ``>``, the earliest when ``<``),
    dated the migration's time or just after the key's latest time kept."""
    far = f"now() + interval '{AHEAD}'"
    op.execute(
        f"DELETE FROM {table} o WHERE o.{column} > {far} AND EXISTS (SELECT 1 FROM {table} k "
        f"WHERE k.tenant_id = o.tenant_id AND k.{key} = o.{key} AND k.{column} > {far} "
        f"AND k.{column} {keep} o.{column})"
    )
    op.execute(
        f"UPDATE {table} o SET {column} = GREATEST(now(), (SELECT max(k.{column}) + interval '1 microsecond' "
        f"FROM {table} k WHERE k.tenant_id = o.tenant_id AND k.{key} = o.{key} AND k.{column} <= {far})) "
        f"WHERE o.{column} > {far}"
    )


def downgrade() -> None:
    """Nothing to undo: the far-future times re-dated are not kept (see the module's docstring)."""
