"""Tenant settings in the metrics consumer: an invalid document stored by hand stops only its tenant."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metrics.handlers import handle_batch

from .metrics_support import attributed, create_tenant, messages_of, new_deps, rollup_rows


async def test_an_invalid_setting_stored_by_hand_rejects_only_that_tenants_messages(
    db_engine: AsyncEngine,
) -> None:
    await create_tenant(db_engine, "acme")
    await create_tenant(db_engine, "globex")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                """UPDATE tenants SET settings = '{"metrics": {"conversation_min_secs": 30}}' WHERE tenant_id = 'acme'"""
            )
        )
    at = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    messages = messages_of(
        [
            attributed(tenant_id="acme", activity=1, occurred_at=at),
            attributed(tenant_id="globex", activity=2, occurred_at=at),
            attributed(tenant_id="acme", activity=3, occurred_at=at),
        ]
    )

    rejected = await handle_batch(messages, new_deps(db_engine))

    assert [(r.message.offset, r.reason) for r in rejected] == [
        (
            0,
            "tenant 'acme' has invalid settings: metrics.conversation_min_secs: Extra inputs are not permitted",
        ),
        (
            2,
            "tenant 'acme' has invalid settings: metrics.conversation_min_secs: Extra inputs are not permitted",
        ),
    ]
    assert await rollup_rows(db_engine, "acme") == {}
    globex = await rollup_rows(db_engine, "globex")
    assert (
        sum(
            row["activities"]
            for (level, _, grain, _), row in globex.items()
            if (level, grain) == ("rep", "day")
        )
        == 1
    )
