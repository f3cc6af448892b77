"""Migration 0050: every deal's stored last buyer reply is recomputed by the migration, so a deal
whose buyer answered by a conversation (kept as "never replied" by the emails-only rule) gets that
answer's time as its last buyer reply; and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from services.metrics.adapters import read_models

from .metrics_support import apply, attributed, create_tenant

TENANT = "acme-0050"
BEFORE = "0049_rep_former_holdings"
CALLED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
KEPT = f"SELECT deal_id, last_buyer_reply_at FROM metric_deal_engagement WHERE tenant_id = '{TENANT}'"


async def _kept(engine: AsyncEngine) -> list[tuple[str, datetime | None]]:
    async with engine.connect() as conn:
        return [(r.deal_id, r.last_buyer_reply_at) for r in await conn.execute(text(KEPT))]


async def _pending(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM metric_deal_engagement_changes WHERE tenant_id = :t"), {"t": TENANT}
        )
        return int(found.scalar_one())


async def test_every_deal_is_recomputed_with_the_buyer_answers_rule(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await create_tenant(db_engine, TENANT)
    conversation = attributed(
        tenant_id=TENANT, activity=1, deal_id="d1", occurred_at=CALLED, duration_seconds=120
    )
    # Counted before the downgrade: the consumer of this release writes tables added after 0050
    # (metric_deferred_events, 0052).
    await apply(db_engine, [conversation])
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.begin() as conn:
        await read_models.catch_up_engagement(conn, TENANT)
        # What the emails-only rule kept: the deal engaged, never replied.
        await conn.execute(
            text("UPDATE metric_deal_engagement SET last_buyer_reply_at = NULL WHERE tenant_id = :t"),
            {"t": TENANT},
        )
    assert await _kept(db_engine) == [("d1", None)]

    await asyncio.to_thread(upgrade, database_url)
    # Recomputed by the migration itself: nothing left for a refresher of either release to redo.
    assert await _kept(db_engine) == [("d1", CALLED)]
    assert await _pending(db_engine) == 0

    # The downgrade recomputes with the emails-only rule: the conversation is no reply.
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _kept(db_engine) == [("d1", None)]
    assert await _pending(db_engine) == 0
    await asyncio.to_thread(upgrade, database_url)
    assert await _kept(db_engine) == [("d1", CALLED)]
