"""Retention: the purge removes exactly what is past each tenant's retention; aggregates stay exact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from services.gateway.adapters.audit import list_admin_actions
from services.metrics.retention import purge
from services.metrics.telemetry import CONTRIBUTIONS
from tests.integration.polling import eventually, poll_rows

from .privacy_support import rollups

NOW = datetime.now(UTC).replace(microsecond=0)


def _call(external_id: str, days_ago: int) -> dict[str, Any]:
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
        "duration_seconds": 90,
        "participants": [
            {"phone": "+14155550001", "role": "caller"},
            {"phone": "+12125550100", "role": "callee"},
        ],
    }


CALLS = [_call("old-1", 40), _call("old-2", 35), _call("new-1", 20), _call("new-2", 2)]
CRM = {
    "source": "test",
    "entities": [
        {
            "entity_type": "rep",
            "id": "rep-1",
            "name": "Ana",
            "phones": ["+14155550001"],
            "updated_at": "2026-01-01T00:00:00Z",
        }
    ],
}


async def _scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def _until(engine: AsyncEngine, sql: str, expected: Any, **params: Any) -> None:
    await poll_rows(engine, sql, params, lambda rows: rows == [(expected,)])


@pytest.fixture(autouse=True)
def _no_background_purge(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test runs the purge itself; metrics re-reads tenant settings at once.
    monkeypatch.setenv("METRICS_PURGE_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("METRICS_TENANT_CACHE_SECONDS", "0")


async def test_purge_removes_exactly_what_is_past_retention_and_keeps_aggregates_exact(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        keys = {
            t: (await create_tenant(conn, t, TEST_SECRET_KEY))["api_keys"]
            for t in ("acme", "keeper", "broken")
        }
    services = ("ingest", "attribution", "metrics")
    async with in_process_stack(kafka_settings, database_settings, services=services) as stack:
        for tenant in ("acme", "keeper"):
            headers = {"Authorization": f"Bearer {keys[tenant]['ingest']}"}  # type: ignore[index]
            assert (await stack.ingest.post("/v1/crm/sync", json=CRM, headers=headers)).status_code == 202
        await _until(db_engine, "SELECT count(*) FROM ref_reps", 2)
        for tenant in ("acme", "keeper"):
            headers = {"Authorization": f"Bearer {keys[tenant]['ingest']}"}  # type: ignore[index]
            posted = await stack.ingest.post("/v1/events", json={"activities": CALLS}, headers=headers)
            assert posted.status_code == 202, posted.text
        await _until(db_engine, "SELECT count(*) FROM metric_contributions", 8)

        async with db_engine.begin() as conn:
            # The data ages past the policy: acme keeps activities 30 days and raw captures 10.
            policy = {"retention": {"activities_days": 30, "raw_captures_days": 10}}
            await conn.execute(
                text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = 'acme'"),
                {"s": orjson.dumps(policy).decode()},
            )
            await conn.execute(
                text(
                    "UPDATE tenants SET settings = '{\"retention\": {\"activities_days\": 0}}' WHERE tenant_id = 'broken'"
                )
            )
            for tenant in ("acme", "keeper"):
                for key, days in (("zoom-old", 11), ("zoom-new", 1)):
                    await conn.execute(
                        text(
                            "INSERT INTO webhook_state (tenant_id, source, object_key, state, updated_at) "
                            "VALUES (:t, 'zoom', :k, '{}'::jsonb, :at)"
                        ),
                        {"t": tenant, "k": key, "at": NOW - timedelta(days=days)},
                    )
            # A delivery seen 15 days ago (past the 14-day redelivery window) and one seen 13 days ago.
            for days in (15, 13):
                await conn.execute(
                    text(
                        "INSERT INTO ingest_seen_events (tenant_id, activity_id, revision, seen_at) VALUES ('keeper', :a, 0, :at)"
                    ),
                    {"a": uuid.uuid4(), "at": NOW - timedelta(days=days)},
                )
                await conn.execute(
                    text(
                        "INSERT INTO ingest_meeting_keys (tenant_id, meeting_key, activity_id, source, sighting_id, created_at) "
                        "VALUES ('keeper', :k, :a, 'zoom', :a, :at)"
                    ),
                    {"k": f"meeting-{days}", "a": uuid.uuid4(), "at": NOW - timedelta(days=days)},
                )
            before = {t: await rollups(conn, t) for t in ("acme", "keeper")}
        assert before["acme"] == before["keeper"]
        assert sum(cell[4] for cell in before["acme"] if cell[0] == "rep" and cell[2] == "day") == 4

        report = await purge(db_engine, NOW, timedelta(days=14), batch_size=1)
        assert report.tenants["acme"] == {
            "activities": 2,
            "attribution_history": 2,
            "attribution_overrides": 0,
            "attributions": 2,
            "held_sweep_outbox": 0,
            "ingest_meeting_keys": 0,
            "ingest_seen_events": 2,
            "meeting_removals": 0,
            "metric_contributions": 2,
            "webhook_state": 1,
        }
        assert set(report.tenants["keeper"].values()) == {0}
        assert report.ledgers == {
            "ingest_seen_events": 1,
            "ingest_meeting_keys": 1,
            "ingest_undated_deletions": 0,
            "ingest_time_blocks": 0,
        }
        assert list(report.invalid) == ["broken"]
        assert "activities_days" in report.invalid["broken"]
        async with db_engine.connect() as conn:
            assert {t: await rollups(conn, t) for t in ("acme", "keeper")} == before
            left = (
                await conn.execute(
                    text("SELECT external_id FROM activities WHERE tenant_id = 'acme' ORDER BY external_id")
                )
            ).scalars()
            assert list(left) == ["new-1", "new-2"]
            audited, _ = await list_admin_actions(conn, "acme", limit=5, action="retention.purged")
        assert audited[0]["actor"] == "system:retention"
        assert audited[0]["after"]["removed"]["activities"] == 2
        assert await _scalar(db_engine, "SELECT count(*) FROM webhook_state WHERE tenant_id = 'acme'") == 1
        assert await _scalar(db_engine, "SELECT count(*) FROM webhook_state WHERE tenant_id = 'keeper'") == 2

        # A replay of a purged activity is stored again (until the next purge) but never counted twice.
        skipped = CONTRIBUTIONS.labels("past_retention")._value.get()
        headers = {"Authorization": f"Bearer {keys['acme']['ingest']}"}  # type: ignore[index]
        replayed = await stack.ingest.post("/v1/events", json={"activities": CALLS[:1]}, headers=headers)
        assert replayed.status_code == 202

        async def past_retention() -> float:
            return float(CONTRIBUTIONS.labels("past_retention")._value.get())

        await eventually(
            past_retention, lambda got: got > skipped, 60, "the replay skipped as past retention"
        )
        assert CONTRIBUTIONS.labels("past_retention")._value.get() == skipped + 1
        async with db_engine.connect() as conn:
            assert await rollups(conn, "acme") == before["acme"]
        again = await purge(db_engine, NOW, timedelta(days=14), tenant_id="acme")
        assert again.tenants["acme"]["activities"] == 1
        assert again.tenants["acme"]["metric_contributions"] == 0
