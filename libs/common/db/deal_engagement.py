"""Flag deals whose engagement the metrics refresher must recompute from their contributions.

``metric_deal_engagement`` (one row per deal: last activity, last buyer reply, engaged contacts)
is caught up by the refresher from ``metric_deal_engagement_changes``. A writer that removes or
rewrites contributions outside the metrics consumer (the retention purge, erasure) appends a
``recompute`` row for every deal those contributions engaged, in the same statement: one form for
every such writer.
"""

from __future__ import annotations


def recompute_deals_of(rows: str) -> str:
    """An ``INSERT`` flagging every deal that ``rows`` (a CTE of contribution rows with
    ``tenant_id`` and ``engaged_deal_ids``, e.g. a ``DELETE ... RETURNING``) engaged."""
    return (
        "INSERT INTO metric_deal_engagement_changes (tenant_id, deal_id, recompute) "
        f"SELECT DISTINCT tenant_id, unnest(engaged_deal_ids), true FROM {rows}"
    )
