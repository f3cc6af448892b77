"""Settings jobs retried and coalesced (the ``rematch`` jobs attribution queues past
``ATTRIBUTION_REMATCH_LIMIT``).

- ``attempts``: a job of a kind its worker retries (``rematch``) goes back to
  ``queued`` after a failure, claimed again from ``run_after`` on (backoff; 0041's column), up to its worker's
  ``retries``; ``checkpoint``: how far its committed batches got, so a retry resumes there.
  (A batch past the bound merges its windows into the tenant's queued ``rematch`` job,
  ``repository.queue_rematch``; no unique index for it, since the previous release's consumer
  inserts one per batch during a rolling deploy.)
- ``settings_jobs_running``: the claim's "left running by a dead process" half reads an index too
  (with ``settings_jobs_queued``, a BitmapOr), not the whole table.

Revision ID: 0042_rematch_jobs
Revises: 0041_settings_job_schedule
Create Date: 2026-12-05
"""

from alembic import op

revision = "0042_rematch_jobs"
down_revision = "0041_settings_job_schedule"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(
        "ALTER TABLE settings_jobs ADD COLUMN attempts integer NOT NULL DEFAULT 0, "
        "ADD COLUMN checkpoint jsonb"
    )
    op.execute("CREATE INDEX settings_jobs_running ON settings_jobs (kind, started_at) WHERE state = 'running'")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("DROP INDEX IF EXISTS settings_jobs_running")
    op.execute("ALTER TABLE settings_jobs DROP COLUMN checkpoint, DROP COLUMN attempts")
