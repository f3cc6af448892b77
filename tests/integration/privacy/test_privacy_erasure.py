"""Erasure end to end: Bo asks to be forgotten; nothing keeps him, scores equal a load without him."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from libs.common.topics import ACTIVITY_ATTRIBUTED, ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
from tests.integration.pipeline_support import drained
from tests.integration.polling import eventually, references_landed

from .privacy_support import (
    BO_EMAIL,
    BO_TRACES,
    activities,
    crm,
    end_offsets,
    messages_since,
    rollups,
    tables_mentioning,
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _load(client: httpx.AsyncClient, ingest_key: str, *, with_bo: bool) -> None:
    synced = await client.post("/v1/crm/sync", json=crm(with_bo=with_bo), headers=bearer(ingest_key))
    assert synced.status_code == 202, synced.text


async def _count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


pytestmark = pytest.mark.usefixtures("fast_erasure_caches")


async def test_erased_person_leaves_no_trace_and_scores_equal_a_load_without_them(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        acme = await create_tenant(conn, "acme", TEST_SECRET_KEY)
        fresh = await create_tenant(conn, "fresh", TEST_SECRET_KEY)
    acme_keys: dict[str, str] = acme["api_keys"]  # type: ignore[assignment]
    fresh_keys: dict[str, str] = fresh["api_keys"]  # type: ignore[assignment]
    topics = [
        t.physical(kafka_settings.topic_prefix)
        for t in (ACTIVITY_INGESTED, ACTIVITY_ATTRIBUTED, CRM_ENTITY_CHANGED)
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _load(stack.ingest, acme_keys["ingest"], with_bo=True)
        await _load(stack.ingest, fresh_keys["ingest"], with_bo=False)
        await references_landed(db_engine, "acme", crm(with_bo=True)["entities"])
        await references_landed(db_engine, "fresh", crm(with_bo=False)["entities"])
        for key, with_bo in ((acme_keys["ingest"], True), (fresh_keys["ingest"], False)):
            posted = await stack.ingest.post(
                "/v1/events", json={"activities": activities(with_bo=with_bo)}, headers=bearer(key)
            )
            assert posted.status_code == 202, posted.text

        async def both_scored() -> bool:
            async with db_engine.connect() as conn:
                acme_cells, fresh_cells = await rollups(conn, "acme"), await rollups(conn, "fresh")
            day_cells = [c for c in acme_cells if c[0] == "rep" and c[2] == "day"]
            return len(day_cells) == 4 and len(fresh_cells) > 0

        await eventually(both_scored, bool, 60, "both tenants scored")
        async with db_engine.connect() as conn:
            before = await rollups(conn, "acme")
        # Bo's activities count before the erasure: the comparison below is not vacuous.
        assert before != await _fresh_rollups(db_engine)
        assert await tables_mentioning(db_engine, (BO_EMAIL,)) != []

        start = await end_offsets(kafka_settings, topics)
        requested = await stack.gateway.post(
            "/v1/privacy/erasures", json={"email": BO_EMAIL.upper()}, headers=bearer(acme_keys["admin"])
        )
        assert requested.status_code == 202, requested.text
        erasure_id = requested.json()["erasure_id"]

        async def finished() -> Any:
            body = (
                await stack.gateway.get(
                    f"/v1/privacy/erasures/{erasure_id}", headers=bearer(acme_keys["admin"])
                )
            ).json()
            return body if body["state"] == "done" else None

        job = await eventually(finished, bool, 60, "the erasure job")
        assert job["identity_kind"] == "email"
        assert job["done"] == job["total"] == 5
        assert job["progress"] == 1.0
        assert job["counts"] == {
            "activities_deleted": 2,
            "activities_redacted": 1,
            "contacts_deleted": 1,
            "webhook_states_deleted": 0,
            # Two retractions and the shared email's new version (its facts changed).
            "versions_published": 3,
        }

        async def scores_equal() -> bool:
            async with db_engine.connect() as conn:
                return await rollups(conn, "acme") == await rollups(conn, "fresh")

        await eventually(scores_equal, bool, 60, "acme's scores equal those of a load without Bo")
        # The same person again: the same job, done, nothing erased twice.
        again = await stack.gateway.post(
            "/v1/privacy/erasures", json={"email": BO_EMAIL}, headers=bearer(acme_keys["admin"])
        )
        assert again.status_code == 200
        assert again.json()["erasure_id"] == erasure_id
        assert again.json()["counts"] == job["counts"]

        # A replay of Bo's old activities and CRM contact brings nothing back.
        await _load(stack.ingest, acme_keys["ingest"], with_bo=True)
        replayed = await stack.ingest.post(
            "/v1/events", json={"activities": activities(with_bo=True)}, headers=bearer(acme_keys["ingest"])
        )
        assert replayed.status_code == 202, replayed.text
        marker = {
            **activities(with_bo=False)[1],
            "external_id": "m-cy-2",
            "occurred_at": "2026-11-06T16:00:00Z",
        }
        for key in (acme_keys["ingest"], fresh_keys["ingest"]):
            sent = await stack.ingest.post("/v1/events", json={"activities": [marker]}, headers=bearer(key))
            assert sent.status_code == 202
        await eventually(
            lambda: _count(db_engine, "SELECT count(*) FROM attributions WHERE tenant_id = 'acme'"),
            bool,
            60,
            "the marker attributed",
        )

        async def marker_counted() -> bool:
            async with db_engine.connect() as conn:
                cells = await rollups(conn, "acme")
            return any(c[0] == "rep" and c[2] == "day" and str(c[3]) == "2026-11-06" for c in cells)

        await eventually(marker_counted, bool, 60, "the marker counted")
        await drained(kafka_settings)  # the replay too
        await eventually(scores_equal, bool, 60, "scores still equal after the replay")
        assert await _count(
            db_engine, "SELECT count(*) FROM activities WHERE tenant_id = 'acme'"
        ) == await _count(db_engine, "SELECT count(*) FROM activities WHERE tenant_id = 'fresh'")
        assert await tables_mentioning(db_engine, BO_TRACES) == []
        produced = await messages_since(kafka_settings, start)
    assert produced, "the erasure and the replay produced messages"
    leaks = [m for m in produced if any(trace.lower().encode() in m.lower() for trace in BO_TRACES)]
    assert leaks == []


async def _fresh_rollups(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return await rollups(conn, "fresh")
