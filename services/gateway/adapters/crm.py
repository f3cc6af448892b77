"""What the system knows of the tenant's CRM (accounts, contacts, deals), and how far its
pipeline has got: keyset pages by id, counts per stage."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.jobs import REMATCH_JOBS_KEPT

#: Live entities only: deleted and merged-away ones are history, not state.
_LIVE = "NOT deleted AND merged_into IS NULL"


async def list_accounts(
    conn: AsyncConnection, tenant_id: str, *, relationship: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    # Each filter only when asked for: a prepared statement's generic plan keeps ``:x IS NULL OR``
    # conditions as filters, and would walk the tenant's accounts instead of the index range
    # (``ref_accounts_live_by_relationship``, migration 0039; the primary key without one).
    where = [f"tenant_id = :t AND {_LIVE}"]
    if relationship is not None:
        where.append("relationship = :relationship")
    if after is not None:
        where.append("account_id > :after")
    rows = await conn.execute(
        text(
            "SELECT account_id, name, domains, updated_at, relationship, account_type FROM ref_accounts "
            f"WHERE {' AND '.join(where)} ORDER BY account_id LIMIT :limit"
        ),
        {"t": tenant_id, "relationship": relationship, "after": after, "limit": limit},
    )
    return [dict(row._mapping) for row in rows]


async def list_contacts(
    conn: AsyncConnection, tenant_id: str, *, account_id: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT contact_id, name, emails, phones, phone_extensions, account_id, updated_at FROM ref_contacts "
            f"WHERE tenant_id = :t AND {_LIVE} AND (CAST(:account AS text) IS NULL OR account_id = :account) "
            "AND (CAST(:after AS text) IS NULL OR contact_id > :after) ORDER BY contact_id LIMIT :limit"
        ),
        {"t": tenant_id, "account": account_id, "after": after, "limit": limit},
    )
    return [dict(row._mapping) for row in rows]


async def list_deals(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    account_id: str | None,
    owner_rep_id: str | None,
    is_closed: bool | None,
    after: str | None,
    limit: int,
    deal_ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT deal_id, name, account_id, owner_rep_id, stage, amount, is_closed, is_won, created_at, "
            f"closed_at FROM ref_deals WHERE tenant_id = :t AND {_LIVE} "
            "AND (CAST(:account AS text) IS NULL OR account_id = :account) "
            "AND (CAST(:owner AS text) IS NULL OR owner_rep_id = :owner) "
            "AND (CAST(:closed AS boolean) IS NULL OR is_closed = :closed) "
            "AND (CAST(:ids AS text[]) IS NULL OR deal_id = ANY(CAST(:ids AS text[]))) "
            "AND (CAST(:after AS text) IS NULL OR deal_id > :after) ORDER BY deal_id LIMIT :limit"
        ),
        {
            "t": tenant_id,
            "account": account_id,
            "owner": owner_rep_id,
            "closed": is_closed,
            "ids": deal_ids,
            "after": after,
            "limit": limit,
        },
    )
    deals = []
    for row in rows:
        deal = dict(row._mapping)
        deal["amount"] = None if row.amount is None else float(row.amount)
        deals.append(deal)
    return deals


_STAGES = """
WITH accepted AS (
    SELECT activity_id, max(revision) AS revision, min(seen_at) AS seen_at
    FROM ingest_seen_events WHERE tenant_id = :t GROUP BY activity_id
), waiting_store AS (
    SELECT count(*) AS n, min(c.seen_at) AS oldest FROM accepted c
    LEFT JOIN activities a ON a.tenant_id = :t AND a.activity_id = c.activity_id
    WHERE a.activity_id IS NULL OR a.revision < c.revision
), waiting_decision AS (
    SELECT count(*) AS n, min(a.ingested_at) AS oldest FROM activities a
    LEFT JOIN attributions d ON d.tenant_id = a.tenant_id AND d.activity_id = a.activity_id
    WHERE a.tenant_id = :t AND d.activity_id IS NULL
), waiting_metrics AS (
    SELECT count(*) AS n, min(d.decided_at) AS oldest FROM attributions d
    LEFT JOIN metric_contributions m ON m.tenant_id = d.tenant_id AND m.activity_id = d.activity_id
    WHERE d.tenant_id = :t AND (m.activity_id IS NULL OR m.version < d.version)
)
SELECT
    (SELECT count(*) FROM accepted) AS accepted,
    (SELECT max(seen_at) FROM ingest_seen_events WHERE tenant_id = :t) AS accepted_latest,
    (SELECT count(*) FROM attributions WHERE tenant_id = :t) AS attributed,
    (SELECT max(decided_at) FROM attributions WHERE tenant_id = :t) AS attributed_latest,
    ws.n + wd.n AS attribution_pending, least(ws.oldest, wd.oldest) AS attribution_oldest,
    (SELECT count(*) FROM metric_contributions WHERE tenant_id = :t) AS counted,
    wm.n AS metrics_pending, wm.oldest AS metrics_oldest,
    s.refreshed_at, s.dirty_since, now() AS as_of,
    -- A rollup rebuild or a real re-attribution still to finish rewrites what the read models show.
    (SELECT count(*) FROM settings_jobs j WHERE j.tenant_id = :t AND j.state IN ('queued', 'running')
        AND NOT (j.kind = 'reattribute' AND coalesce((j.parameters->>'dry_run')::boolean, true))
    ) AS jobs_pending,
    -- A rematch job that failed after its retries: part of a deal change's window left undecided
    -- (those finished within REMATCH_JOBS_KEPT: older ones are purged when the next is queued).
    (SELECT count(*) FROM settings_jobs j WHERE j.tenant_id = :t AND j.kind = 'rematch' AND j.state = 'failed'
        AND j.finished_at >= now() - CAST(:kept AS interval)
    ) AS rematch_failed
FROM waiting_store ws, waiting_decision wd, waiting_metrics wm
LEFT JOIN metric_refresh_state s ON s.tenant_id = :t
"""

_CRM = f"""
SELECT
    (SELECT count(*) FROM ref_reps WHERE tenant_id = :t AND {_LIVE}) AS reps,
    (SELECT count(*) FROM ref_teams WHERE tenant_id = :t AND NOT deleted) AS teams,
    (SELECT count(*) FROM ref_accounts WHERE tenant_id = :t AND {_LIVE}) AS accounts,
    (SELECT count(*) FROM ref_contacts WHERE tenant_id = :t AND {_LIVE}) AS contacts,
    (SELECT count(*) FROM ref_deals WHERE tenant_id = :t AND {_LIVE}) AS deals,
    greatest(
        (SELECT max(updated_at) FROM ref_reps WHERE tenant_id = :t),
        (SELECT max(updated_at) FROM ref_teams WHERE tenant_id = :t),
        (SELECT max(updated_at) FROM ref_accounts WHERE tenant_id = :t),
        (SELECT max(updated_at) FROM ref_contacts WHERE tenant_id = :t),
        (SELECT max(updated_at) FROM ref_deals WHERE tenant_id = :t)
    ) AS latest_updated_at
"""


async def pipeline_status(conn: AsyncConnection, tenant_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(stage counts and oldest waiting times, CRM reference counts) for the tenant, read now."""
    stages = (await conn.execute(text(_STAGES), {"t": tenant_id, "kept": REMATCH_JOBS_KEPT})).one()
    crm = (await conn.execute(text(_CRM), {"t": tenant_id})).one()
    return dict(stages._mapping), dict(crm._mapping)
