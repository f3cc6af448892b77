"""A settings job's schedule: ``settings_jobs.heartbeat_at``, set when a job is claimed and at each
progress report (``libs.common.jobs.report_progress``): a job is claimed again by another replica
once its heartbeat and its start are older than ``stale_after``, so a job running longer than
that while reporting progress is no longer run twice; and ``run_after``, before which a queued
job is not claimed (``queue_job(delay=...)``: the second pass of a ``reread_phones`` job).

Revision ID: 0041_settings_job_schedule
Revises: 0040_crm_times_ahead
Create Date: 2026-12-05
"""

from alembic import op

revision = "0041_settings_job_schedule"
down_revision = "0040_crm_times_ahead"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE settings_jobs ADD COLUMN heartbeat_at timestamptz, ADD COLUMN run_after timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE settings_jobs DROP COLUMN heartbeat_at, DROP COLUMN run_after")
