"""The outsider's labelled world (``bench.outsider_world``), a few hundred activities of two tenants,
sent through ``POST /v1/crm/sync`` and ``POST /v1/events`` in the order they happen (late deals,
late contacts, late closes, dialer users after their calls), waited for through
``GET /v1/pipeline/status`` and read back through the gateway. The real broker, attribution,
metrics and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.outsider_world import Clients, build, run
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack


@pytest.mark.timeout(300)
async def test_the_outsiders_world_settles_and_meets_the_bar(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    worlds = build(300, seed=11)
    keys: dict[str, dict[str, str]] = {}
    async with db_engine.begin() as conn:
        for w in worlds:
            made = await create_tenant(conn, w.tenant_id, TEST_SECRET_KEY)
            keys[w.tenant_id] = made["api_keys"]  # type: ignore[assignment]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        score, told, _ = await run(Clients(stack.ingest, stack.gateway, keys), worlds)
    f = score.figures()
    assert score.missing == 0
    assert told["accepted"] == score.activities == 300
    assert f["credited_precision"] >= 0.99, score.deal_misses
    assert f["credited_recall"] >= 0.97, score.deal_misses
    assert f["rep_accuracy"] >= 0.995, score.rep_misses
    assert f["team_accuracy"] >= 0.995, score.team_misses
