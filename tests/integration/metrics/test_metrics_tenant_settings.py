"""Tenant settings in the metrics consumer: an invalid document stored by hand stops only its tenant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.kafka.failures import TenantSettingsInvalid
from services.metrics.handlers import handle_batch

from .metrics_support import attributed, create_tenant, messages_of, new_deps, rollup_rows


async def test_an_invalid_setting_stored_by_hand_fails_only_that_tenants_messages(
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

    with pytest.raises(TenantSettingsInvalid) as caught:
        await handle_batch(messages, new_deps(db_engine))
    # The runner parks that tenant's messages on this error and hands the rest back.
    assert caught.value.tenant_id == "acme"
    assert str(caught.value) == (
        "tenant acme: settings invalid at metrics.conversation_min_secs: Extra inputs are not permitted"
    )
    assert await rollup_rows(db_engine, "acme") == {}
    assert (
        await handle_batch([m for m in messages if m.payload.tenant_id != "acme"], new_deps(db_engine)) == []
    )
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
