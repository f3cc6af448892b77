"""Reps' and contacts' addresses held in Unicode's composed form (rules 2026.12.40):

Attribution finds the reps and contacts an activity's participants name by
``ref_rep_identities``, ``ref_contact_identities`` and ``ref_rep_former_identities``, now written
by ``personal_domains.held_address`` (NFC, lower-cased), the form a participant's address is
matched in too, so ``josé@`` typed with the accent as a separate mark (NFD) is the rep listing it
composed, and the other way round. The rows held before were lower-cased only: an address
holding a letter other than ASCII is rewritten here by the same function (a row whose composed
form is held already is dropped). Downgrade keeps the composed rows: they are the same
addresses, which the code before compared as written.

Revision ID: 0044_composed_identities
Revises: 0043_rep_linking_keys
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

from libs.common.personal_domains import held_address

revision = "0044_composed_identities"
down_revision = "0043_rep_linking_keys"
branch_labels = None
depends_on = None

LOCK_TIMEOUT = "5s"

#: table -> the columns of its key after ``tenant_id`` and ``identity``.
_TABLES = {
    "ref_rep_identities": ("rep_id",),
    "ref_contact_identities": ("contact_id",),
    "ref_rep_former_identities": (),
}


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    bind = op.get_bind()
    for table, key in _TABLES.items():
        # Only an address with a character beyond ASCII can be in another Unicode form.
        columns = "".join(f", {column}" for column in key)
        held = bind.execute(
            text(f"SELECT tenant_id, identity{columns} FROM {table} WHERE identity ~ '@' AND identity !~ '^[ -~]*$'")
        ).all()
        same_key = "".join(f" AND o.{column} = {table}.{column}" for column in key)
        this_row = "".join(f" AND {column} = :{column}" for column in key)
        for row in held:
            composed = held_address(row.identity)
            if composed == row.identity:
                continue
            where = {"t": row.tenant_id, "identity": row.identity, **{c: getattr(row, c) for c in key}}
            bind.execute(
                text(
                    f"UPDATE {table} SET identity = :composed WHERE tenant_id = :t AND identity = :identity"
                    f"{this_row} AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.tenant_id = :t "
                    f"AND o.identity = :composed{same_key})"
                ),
                {**where, "composed": composed},
            )
            # Held composed already: the decomposed row goes.
            bind.execute(text(f"DELETE FROM {table} WHERE tenant_id = :t AND identity = :identity{this_row}"), where)


def downgrade() -> None:
    """The composed rows stay (the same addresses)."""
