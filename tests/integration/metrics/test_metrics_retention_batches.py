"""The retention purge takes an activity's attributions, versions, overrides and a version the
held sweep queued for it (not published yet) in its batch, by id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.retention import RetentionSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from services.metrics.retention import purge_tenant

_NOW = datetime(2026, 12, 3, tzinfo=UTC)
_OLD = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
_KEPT = uuid.UUID("00000000-0000-0000-0000-0000000000b2")

_ACTIVITY = (
    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome, "
    "occurred_at, payload, ingested_at) VALUES ('acme', :a, 'test', :x, 'call', 'outbound', "
    "'connected', :at, '{}'::jsonb, :at)"
)
_VERSION = (
    "INSERT INTO {table} (tenant_id, activity_id, version, status, deal_id, confidence, explanation, "
    "decided_at{extra}) VALUES ('acme', :a, :v, 'attributed', 'deal-1', 0.9, '{{}}'::jsonb, :at{values})"
)


async def _ids(engine: AsyncEngine, table: str) -> list[tuple[uuid.UUID, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT activity_id FROM {table} ORDER BY activity_id"))
        return [tuple(row) for row in rows]


async def test_an_activity_past_retention_goes_with_its_versions_and_override(db_engine: AsyncEngine) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        for a, at in ((_OLD, _NOW - timedelta(days=40)), (_KEPT, _NOW - timedelta(days=10))):
            params = {"a": a, "at": at}
            await conn.execute(text(_ACTIVITY), {**params, "x": str(a)})
            await conn.execute(
                text(_VERSION.format(table="attribution_superseded", extra="", values="")), {**params, "v": 1}
            )
            await conn.execute(
                text(
                    _VERSION.format(table="attributions", extra=", occurred_at, kind", values=", :at, 'call'")
                ),
                {**params, "v": 2},
            )
            await conn.execute(
                text(
                    "INSERT INTO attribution_overrides (tenant_id, activity_id, deal_id, set_by, set_at) "
                    "VALUES ('acme', :a, 'deal-1', 'admin', :at)"
                ),
                params,
            )
            await conn.execute(
                text(
                    "INSERT INTO held_sweep_outbox (tenant_id, activity_id, version, event) "
                    "VALUES ('acme', :a, 3, '\\x7b7d'::bytea)"
                ),
                params,
            )

    counts = await purge_tenant(db_engine, "acme", RetentionSettings(activities_days=30), _NOW)

    assert counts == {
        "activities": 1,
        "attribution_history": 2,
        "attribution_overrides": 1,
        "attributions": 1,
        "held_sweep_outbox": 1,
        "ingest_meeting_keys": 0,
        "ingest_seen_events": 0,
        "meeting_removals": 0,
        "metric_contributions": 0,
        "webhook_state": 0,
    }
    for table in (
        "activities",
        "attributions",
        "attribution_superseded",
        "attribution_overrides",
        "held_sweep_outbox",
    ):
        assert await _ids(db_engine, table) == [(_KEPT,)]
