"""One rep per person (rules 2026.12.38):

* ``ref_reps.mailboxes``: the keys a rep's addresses are compared by when another source's rep
  may be her person (``personal_domains.linking_keys``: each address in Unicode's composed form,
  lower-cased, a Gmail address as its mailbox, and a ``+tagged`` one's untagged mailbox too),
  written with every rep version and read through a GIN index by ``repository.resolve_people``,
  so that the reps found do not depend on which of two spellings arrived first (before, the
  discovery only stripped ``+tags`` in SQL while the decision also dropped Gmail's dots).
  Filled here for the reps held, by the same function.
* ``ref_rep_former_identities.renamed``: the address was replaced by another on the rep's own
  record (a new name), so it links her to the source that has not synced her new address yet.
  An address only removed (a correction: a shared inbox taken off her record) stays hers for
  attribution but links nobody. Rows held before this migration are not renames (a rename in
  progress links again once the lagging source sends the new address).
* ``attribution_overrides (tenant_id, rep_id)``: the overrides naming a rep, read by
  ``repository.activities_of_reps`` when a person changes (before, every override of the tenant).

Revision ID: 0043_rep_linking_keys
Revises: 0042_rematch_jobs
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

from libs.common.db.arrays import text_array_literal
from libs.common.personal_domains import linking_keys

revision = "0043_rep_linking_keys"
down_revision = "0042_rematch_jobs"
branch_labels = None
depends_on = None

LOCK_TIMEOUT = "5s"
_BATCH = 5_000


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("ALTER TABLE ref_reps ADD COLUMN mailboxes text[] NOT NULL DEFAULT '{}'")
    op.execute("ALTER TABLE ref_rep_former_identities ADD COLUMN renamed boolean NOT NULL DEFAULT false")
    bind = op.get_bind()
    after = ("", "")
    while True:
        batch = bind.execute(
            text(
                "SELECT tenant_id, rep_id, emails FROM ref_reps WHERE (tenant_id, rep_id) > (:t, :r) "
                "AND cardinality(emails) > 0 ORDER BY tenant_id, rep_id LIMIT :n"
            ),
            {"t": after[0], "r": after[1], "n": _BATCH},
        ).all()
        if not batch:
            break
        bind.execute(
            text(
                "UPDATE ref_reps SET mailboxes = CAST(m.keys AS text[]) FROM unnest(CAST(:t AS text[]), "
                "CAST(:r AS text[]), CAST(:k AS text[])) AS m(tenant_id, rep_id, keys) "
                "WHERE ref_reps.tenant_id = m.tenant_id AND ref_reps.rep_id = m.rep_id"
            ),
            {
                "t": [row.tenant_id for row in batch],
                "r": [row.rep_id for row in batch],
                # One array literal per rep (unnest of a 2-D array would flatten it).
                "k": [text_array_literal(linking_keys(row.emails)) for row in batch],
            },
        )
        after = (batch[-1].tenant_id, batch[-1].rep_id)
    op.execute("CREATE INDEX ref_reps_mailboxes ON ref_reps USING gin (mailboxes)")
    op.execute("CREATE INDEX attribution_overrides_rep ON attribution_overrides (tenant_id, rep_id)")


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("DROP INDEX IF EXISTS attribution_overrides_rep")
    op.execute("DROP INDEX IF EXISTS ref_reps_mailboxes")
    op.execute("ALTER TABLE ref_rep_former_identities DROP COLUMN renamed")
    op.execute("ALTER TABLE ref_reps DROP COLUMN mailboxes")
