"""Migration 0042: settings jobs get ``attempts`` and ``checkpoint`` (a failed
``rematch`` job retried from its last committed batch) and an index of running jobs; the jobs
queued before keep waiting, untried; and back."""

from __future__ import annotations

import asyncio
import uuid

import orjson
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from tests.integration.attribution.attribution_support import rows

BEFORE = "0041_settings_job_schedule"
COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'settings_jobs' "
    "AND column_name IN ('attempts', 'checkpoint') ORDER BY column_name"
)


def _window(account: str) -> dict[str, object]:
    return {"accounts": [account], "contacts": [], "since": "2026-10-06T00:00:00+00:00", "until": None}


async def _queue(engine: AsyncEngine, kind: str, windows: list[dict[str, object]]) -> None:
    async with engine.begin() as conn:  # one transaction each: its own created_at
        await conn.execute(
            text(
                "INSERT INTO settings_jobs (job_id, tenant_id, kind, parameters, created_by) "
                "VALUES (:id, 'acme-0040', :kind, CAST(:p AS jsonb), 'attribution')"
            ),
            {"id": uuid.uuid4(), "kind": kind, "p": orjson.dumps({"windows": windows}).decode()},
        )


async def test_jobs_queued_before_wait_untried_and_the_columns_go_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'settings_jobs' ORDER BY indexname"
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    try:
        assert await rows(db_engine, COLUMNS) == []
        async with db_engine.begin() as conn:
            await create_tenant(conn, "acme-0040", TEST_SECRET_KEY)
        await _queue(db_engine, "rematch", [_window("acc-1")])
        await _queue(db_engine, "rematch", [_window("acc-2")])
        await asyncio.to_thread(upgrade, database_url)
        assert await rows(
            db_engine,
            "SELECT kind, state, attempts, run_after, checkpoint, parameters->'windows'->0->'accounts' "
            "FROM settings_jobs WHERE tenant_id = 'acme-0040' ORDER BY created_at",
        ) == [
            ("rematch", "queued", 0, None, None, ["acc-1"]),
            ("rematch", "queued", 0, None, None, ["acc-2"]),
        ]
        assert await rows(db_engine, COLUMNS) == [("attempts",), ("checkpoint",)]
        assert ("settings_jobs_running",) in await rows(db_engine, indexes)
        await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
        assert await rows(db_engine, COLUMNS) == []
        assert await rows(db_engine, indexes) == [
            ("settings_jobs_pkey",),
            ("settings_jobs_queued",),
            ("settings_jobs_tenant",),
        ]
    finally:
        await asyncio.to_thread(upgrade, database_url)
