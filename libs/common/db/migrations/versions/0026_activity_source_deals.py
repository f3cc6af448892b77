"""The deal each source of a meeting filed it on: ``activities.source_deals`` maps a source to
``[revision, deal_id]``, its latest revision read and the deal it named then (null: none, an
association removed). Two sources' sightings share one activity (docs/webhooks.md, "One meeting,
several sources") whose row holds the newest revision only; a CRM's explicit deal link is kept
here whatever the order of the revisions. Empty for the rows held.

Revision ID: 0026_activity_source_deals
Revises: 0025_contact_former_phones
Create Date: 2026-12-04
"""

from alembic import op

revision = "0026_activity_source_deals"
down_revision = "0025_contact_former_phones"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE activities ADD COLUMN source_deals jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE activities DROP COLUMN source_deals")
