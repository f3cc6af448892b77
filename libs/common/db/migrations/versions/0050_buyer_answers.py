"""A deal's last buyer reply counts every buyer answer, not only emails: a conversation, an
external meeting held or an inbound connected call too (``no_buyer_reply``;
``libs.common.db.deal_engagement.buyer_answered_sql``). The stored engagement of every deal is
flagged for the metrics refresher to recompute from its contributions, with the rule of the code
that runs it; the downgrade flags them again, so the older code recomputes them with its own.

Revision ID: 0050_buyer_answers
Revises: 0049_rep_former_holdings
Create Date: 2026-12-05
"""

from alembic import op

revision = "0050_buyer_answers"
down_revision = "0049_rep_former_holdings"
branch_labels = None
depends_on = None

_RECOMPUTE_EVERY_DEAL = (
    "INSERT INTO metric_deal_engagement_changes (tenant_id, deal_id, recompute) "
    "SELECT tenant_id, deal_id, true FROM metric_deal_engagement"
)


def upgrade() -> None:
    op.execute(_RECOMPUTE_EVERY_DEAL)


def downgrade() -> None:
    op.execute(_RECOMPUTE_EVERY_DEAL)
