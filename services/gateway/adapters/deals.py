"""Deals from the CRM reference table: by owner or by id, with their names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def list_deals(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    owner_rep_id: str | None,
    deal_ids: list[str] | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to ``limit`` deals ordered by id after ``after``, optionally one owner's or only ``deal_ids``."""
    rows = await conn.execute(
        text(
            """
            SELECT deal_id, name, account_id, owner_rep_id, stage, amount, is_closed, is_won, created_at,
                   closed_at
            FROM ref_deals
            WHERE tenant_id = :t AND NOT deleted
              AND (CAST(:owner AS text) IS NULL OR owner_rep_id = :owner)
              AND (CAST(:ids AS text[]) IS NULL OR deal_id = ANY(CAST(:ids AS text[])))
              AND (CAST(:after AS text) IS NULL OR deal_id > :after)
            ORDER BY deal_id LIMIT :limit
            """
        ),
        {"t": tenant_id, "owner": owner_rep_id, "ids": deal_ids, "after": after, "limit": limit},
    )
    deals = []
    for row in rows:
        deal = dict(row._mapping)
        deal["amount"] = None if row.amount is None else float(row.amount)
        deals.append(deal)
    return deals
