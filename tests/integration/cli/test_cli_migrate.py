"""``spm migrate --status`` and ``--down-to``: the runbook's downgrades, from the command line."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from libs.common.db.migrate import head_revision
from spm.cli import app

#: Whatever migrations a later release adds, the downgrades below go through 0039 to 0038 and 0037.
HEAD = head_revision()


async def test_spm_migrate_shows_the_revision_downgrades_and_stops_at_a_refusing_migration(
    database_url: str, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = await _invoke(["migrate", "--status"])
    assert result.exit_code == 0, result.output
    assert result.output == f"database at {HEAD} (this release's head: {HEAD})\n"

    result = await _invoke(["migrate", "--down-to", "0038_ingest_time_blocks"])
    assert result.exit_code == 0, result.output
    assert result.output == f"database at 0038_ingest_time_blocks (this release's head: {HEAD})\n"
    async with db_engine.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('ref_accounts_live_by_relationship')")) is None

    # 0037 refuses while a version waits in its queue: the command says why and where it stopped.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO held_sweep_outbox (tenant_id, activity_id, version, event) VALUES ('acme', :a, 2, '\\x00')"
            ),
            {"a": uuid.uuid4()},
        )
    result = await _invoke(["migrate", "--down-to", "0035_retracted_activities"])
    assert result.exit_code == 1, result.output
    assert "spm: downgrade to 0035_retracted_activities stopped: held_sweep_outbox holds 1 version(s)" in (
        result.output
    )
    assert result.output.endswith(f"database at 0037_held_sweep_outbox (this release's head: {HEAD})\n")

    result = await _invoke(["migrate", "--down-to", "0099_nothing"])
    assert result.exit_code == 2
    assert "no migration '0099_nothing' in this release" in result.output

    result = await _invoke(["migrate"])
    assert result.exit_code == 0, result.output
    result = await _invoke(["migrate", "--status"])
    assert result.output == f"database at {HEAD} (this release's head: {HEAD})\n"


async def _invoke(args: list[str]) -> Result:
    # The command runs its own event loop: keep it off the test's.
    return await asyncio.to_thread(CliRunner().invoke, app, args)
