"""A running settings job's heartbeat: ``settings_jobs.heartbeat_at``, set when it is claimed and
at each progress report (``libs.common.jobs.report_progress``). A job is claimed again by another
replica once its heartbeat (else its start) is older than ``stale_after``: a job running longer
than that while reporting progress is no longer run twice.

Revision ID: 0040_settings_job_heartbeat
Revises: 0039_accounts_by_relationship
Create Date: 2026-12-05
"""

from alembic import op

revision = "0040_settings_job_heartbeat"
down_revision = "0039_accounts_by_relationship"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE settings_jobs ADD COLUMN heartbeat_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE settings_jobs DROP COLUMN heartbeat_at")
