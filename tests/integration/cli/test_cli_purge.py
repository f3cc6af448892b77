"""``spm purge`` runs the retention purge now, names a tenant whose retention setting is invalid, exits 1."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from spm.cli import _register_commands, app


async def test_spm_purge_prunes_the_ledgers_and_reports_invalid_policies(
    database_url: str, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        await create_tenant(conn, "broken", TEST_SECRET_KEY)
        await conn.execute(
            text(
                'UPDATE tenants SET settings = \'{"retention": {"activities_days": "soon"}}\' WHERE tenant_id = \'broken\''
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ingest_seen_events (tenant_id, activity_id, revision, seen_at) VALUES ('acme', :a, 0, :at)"
            ),
            {"a": uuid.uuid4(), "at": datetime.now(UTC) - timedelta(days=30)},
        )
    _register_commands()
    result = await _invoke(["purge"])
    assert result.exit_code == 1, result.output
    assert "acme: activities 0" in result.output
    assert "ledgers: ingest_seen_events 1, ingest_meeting_keys 0" in result.output
    assert "broken: not purged, invalid retention setting" in result.output


async def test_spm_purge_of_a_tenant_that_does_not_exist_purges_nothing_and_says_so(
    database_url: str, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        await conn.execute(
            text(
                "INSERT INTO ingest_seen_events (tenant_id, activity_id, revision, seen_at) VALUES ('acme', :a, 0, :at)"
            ),
            {"a": uuid.uuid4(), "at": datetime.now(UTC) - timedelta(days=30)},
        )
    _register_commands()
    result = await _invoke(["purge", "--tenant", "acmee"])
    assert result.exit_code == 1, result.output
    assert result.output == "no tenant 'acmee'\n"
    async with db_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM ingest_seen_events")) == 1


async def _invoke(args: list[str]) -> Result:
    # The command runs its own event loop: keep it off the test's.
    return await asyncio.to_thread(CliRunner().invoke, app, args)
