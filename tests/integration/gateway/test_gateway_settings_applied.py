"""A settings change reaches the running services through `settings-changed`, not through cache expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.polling import eventually, references_landed

from .gateway_support import bearer


async def test_a_threshold_change_shows_in_insights_without_waiting_for_caches(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Caches and full refreshes that outlive the test: only the event can make the change visible.
    monkeypatch.setenv("METRICS_TENANT_CACHE_SECONDS", "3600")
    monkeypatch.setenv("METRICS_FULL_REFRESH_SECONDS", "3600")
    monkeypatch.setenv("METRICS_REFRESH_INTERVAL_SECONDS", "0.5")
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    created = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    deal = {
        "entity_type": "deal",
        "id": "deal-1",
        "name": "Renewal",
        "stage": "proposal",
        "created_at": created,
        "updated_at": created,
    }
    services = ("ingest", "attribution", "metrics", "gateway")
    async with in_process_stack(kafka_settings, database_settings, services=services) as stack:
        await asyncio.wait_for(stack.apps["metrics"].state.settings_listener.listening.wait(), 30)
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "test", "entities": [deal]}, headers=bearer(keys["ingest"])
        )
        assert synced.status_code == 202, synced.text

        await references_landed(db_engine, "acme", [deal])
        # As a metrics batch would: flag the tenant, then wait for the refresher to take it.
        async with db_engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO metric_refresh_state (tenant_id, dirty_since) VALUES ('acme', now()) "
                    "ON CONFLICT (tenant_id) DO UPDATE SET dirty_since = now()"
                )
            )

        async def refreshed() -> bool:
            async with db_engine.connect() as conn:
                row = await conn.execute(
                    text(
                        "SELECT 1 FROM metric_refresh_state WHERE tenant_id = 'acme' AND dirty_since IS NULL"
                    )
                )
                return row.first() is not None

        async def stale() -> list[Any]:
            answer = await stack.gateway.get("/v1/insights/stale-deals", headers=bearer(keys["read"]))
            assert answer.status_code == 200, answer.text
            return list(answer.json()["items"])

        await eventually(refreshed, bool, 60, "the refresher taking the flagged tenant")
        # Ten quiet days: not stale under the default of 14.
        assert await stale() == []
        changed = await stack.gateway.patch(
            "/v1/settings/insight_thresholds", json={"stale_after_days": 7}, headers=bearer(keys["admin"])
        )
        assert changed.status_code == 200, changed.text
        items = await eventually(stale, bool, 60, "a stale deal under the new threshold")
        assert [(i["subject_id"], i["reasons"]) for i in items] == [("deal-1", ["no_recent_activity"])]
