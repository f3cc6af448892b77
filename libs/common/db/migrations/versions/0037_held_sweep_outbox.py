"""``held_sweep_outbox``: the versions attribution's held sweep decided and saved, waiting to be
published (``services.attribution.held_sweep``).

The sweep used to publish each batch before its transaction committed, holding the meetings'
row locks for as long as the broker took to acknowledge: a consumer storing a newer revision of
one of them waited that long. Now the transaction that locks, decides and saves a batch queues
its versions here and commits; they are published after, in another transaction that locks only
these rows, and deleted once acknowledged. A process that dies in between leaves them queued:
the next round of any replica publishes them (at least once; metrics keeps one per version).

Downgrading refuses while a version is queued: dropping the table would lose it for good (its
meeting, stored held, is never taken again). Let the sweep publish them first.

Revision ID: 0037_held_sweep_outbox
Revises: 0036_scheduled_by_tenant
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

revision = "0037_held_sweep_outbox"
down_revision = "0036_scheduled_by_tenant"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS held_sweep_outbox (
            outbox_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id text NOT NULL,
            activity_id uuid NOT NULL,
            version integer NOT NULL,
            event bytea NOT NULL,
            queued_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    queued = op.get_bind().execute(text("SELECT count(*) FROM held_sweep_outbox")).scalar_one()
    if queued:
        raise RuntimeError(
            f"held_sweep_outbox holds {queued} version(s) not yet published; dropping it would lose "
            "them (their meetings, stored held, are never taken again). Let the held sweep publish "
            "them (attribution running with the broker up: SELECT count(*) FROM held_sweep_outbox "
            "reaches 0), then stop the sweep (ATTRIBUTION_HELD_SWEEP_INTERVAL_SECONDS=0) or roll "
            "attribution back, and downgrade again"
        )
    op.execute("DROP TABLE held_sweep_outbox")
