"""A deal's last buyer reply counts every buyer answer, not only emails: a conversation, an
external meeting held or an inbound connected call too (``no_buyer_reply``;
``libs.common.db.deal_engagement.buyer_answered_sql``). Every deal's stored figure is recomputed
here, from its contributions, with the new rule; the downgrade recomputes it with the emails-only
rule. Both are done in the migration rather than left to the refresher, whose running release
(the previous one, while the migration Job runs before the roll) would redo them with its own
rule. A deal that release's refresher recomputes between the migration and the roll (an activity
moved away from it) keeps the emails-only figure until its next answer; `spm
rebuild-deal-engagement` after the roll makes every deal exact (docs/operations.md).

Revision ID: 0050_buyer_answers
Revises: 0049_rep_former_holdings
Create Date: 2026-12-05
"""

from alembic import op

revision = "0050_buyer_answers"
down_revision = "0049_rep_former_holdings"
branch_labels = None
depends_on = None

#: Written out rather than imported: a migration keeps the rule of its release.
_ANSWERED = (
    "(buyer_replies > 0 OR conversations > 0 OR meetings_held > 0 OR (talk_seconds > 0 AND dials = 0))"
)
_EMAILED = "(buyer_replies > 0)"


def _recompute(answered: str) -> str:
    return f"""
        UPDATE metric_deal_engagement s SET last_buyer_reply_at = r.reply_at
        FROM (
            SELECT tenant_id, deal, max(occurred_at) FILTER (WHERE answered) AS reply_at
            FROM (
                SELECT tenant_id, unnest(engaged_deal_ids) AS deal, occurred_at, {answered} AS answered
                FROM metric_contributions WHERE engaged_deal_ids <> '{{}}'
            ) e GROUP BY tenant_id, deal
        ) r
        WHERE s.tenant_id = r.tenant_id AND s.deal_id = r.deal
          AND s.last_buyer_reply_at IS DISTINCT FROM r.reply_at
    """


def upgrade() -> None:
    op.execute(_recompute(_ANSWERED))


def downgrade() -> None:
    op.execute(_recompute(_EMAILED))
