"""Flag deals whose engagement the metrics refresher must recompute from their contributions.

``metric_deal_engagement`` (one row per deal: last activity, last buyer reply, engaged contacts)
is caught up by the refresher from ``metric_deal_engagement_changes``. A writer that removes or
rewrites contributions outside the metrics consumer (the retention purge, erasure) appends a
``recompute`` row for every deal those contributions engaged, in the same statement: one form for
every such writer.

A deal's **buyer answer** is the buyer taking part, not just being reached: an email from the
buyer (``buyer_replies``), a conversation (an outbound connected call of at least the tenant's
conversation length), an external meeting held, or an inbound connected call (talk time on a
contribution with no dial: the buyer called). ``buyer_answered_sql`` is its one SQL form, read by
the metrics refresher, its reference and the gateway's deal timeline; the metrics domain's
``buyer_answered`` is the same rule on counters.
"""

from __future__ import annotations


def recompute_deals_of(rows: str) -> str:
    """An ``INSERT`` flagging every deal that ``rows`` (a CTE of contribution rows with
    ``tenant_id`` and ``engaged_deal_ids``, e.g. a ``DELETE ... RETURNING``) engaged."""
    return (
        "INSERT INTO metric_deal_engagement_changes (tenant_id, deal_id, recompute) "
        f"SELECT DISTINCT tenant_id, unnest(engaged_deal_ids), true FROM {rows}"
    )


def buyer_answered_sql(alias: str = "") -> str:
    """Whether a ``metric_contributions`` row (``alias``: its table alias, or none) is a buyer
    answer: a boolean SQL expression over its counters."""
    c = f"{alias}." if alias else ""
    return (
        f"({c}buyer_replies > 0 OR {c}conversations > 0 OR {c}meetings_held > 0 "
        f"OR ({c}talk_seconds > 0 AND {c}dials = 0))"
    )
