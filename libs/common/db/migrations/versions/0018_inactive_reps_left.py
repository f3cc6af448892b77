"""A rep the CRM deactivated (``active: false``) has left, as a deleted one has.

Until now an inactive rep kept her emails and phones in ``ref_rep_identities``: mail to her
address after she left (a buyer answering an old thread) was still credited to her, not to the
deal's new owner. Attribution now treats a rep arriving inactive like a tombstone: her identities
move to ``ref_rep_former_identities`` with ``until`` = the ``updated_at`` of that version, hers
for what happened before. This moves the reps already held inactive the same way (``until`` =
their record's ``updated_at``), leaving an identity another active rep also holds to that rep;
of several inactive reps holding one identity the latest record keeps it. The downgrade gives
the inactive reps their listed emails and phones back.

Revision ID: 0018_inactive_reps_left
Revises: 0017_deal_engagement
Create Date: 2026-12-04
"""

from alembic import op

revision = "0018_inactive_reps_left"
down_revision = "0017_deal_engagement"
branch_labels = None
depends_on = None

_LEFT = "NOT r.active AND NOT r.deleted AND r.merged_into IS NULL"


def upgrade() -> None:
    op.execute(
        f"""
        INSERT INTO ref_rep_former_identities (tenant_id, identity, rep_id, until)
        SELECT DISTINCT ON (i.tenant_id, i.identity) i.tenant_id, i.identity, i.rep_id, r.updated_at
        FROM ref_rep_identities i JOIN ref_reps r ON r.tenant_id = i.tenant_id AND r.rep_id = i.rep_id
        WHERE {_LEFT} AND NOT EXISTS (
            SELECT 1 FROM ref_rep_identities o JOIN ref_reps a ON a.tenant_id = o.tenant_id AND a.rep_id = o.rep_id
            WHERE o.tenant_id = i.tenant_id AND o.identity = i.identity AND o.rep_id <> i.rep_id
              AND a.active AND NOT a.deleted AND a.merged_into IS NULL)
        ORDER BY i.tenant_id, i.identity, r.updated_at DESC, i.rep_id
        ON CONFLICT (tenant_id, identity) DO UPDATE SET rep_id = EXCLUDED.rep_id, until = EXCLUDED.until
        WHERE ref_rep_former_identities.until <= EXCLUDED.until
        """
    )
    op.execute(
        f"DELETE FROM ref_rep_identities i USING ref_reps r "
        f"WHERE r.tenant_id = i.tenant_id AND r.rep_id = i.rep_id AND {_LEFT}"
    )


def downgrade() -> None:
    op.execute(
        f"""
        INSERT INTO ref_rep_identities (tenant_id, identity, rep_id)
        SELECT DISTINCT r.tenant_id, x.identity, r.rep_id FROM ref_reps r
        CROSS JOIN LATERAL unnest(ARRAY(SELECT lower(e) FROM unnest(r.emails) e) || r.phones) AS x(identity)
        WHERE {_LEFT}
        ON CONFLICT DO NOTHING
        """
    )
