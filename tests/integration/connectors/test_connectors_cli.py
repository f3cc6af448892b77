"""``spm connectors add|list|pause|resume`` against the database, the backfill done by the sync loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import typer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import TEST_SECRET_KEY
from services.connectors.handlers import sync_due
from spm.commands.connectors import register
from tests.integration.polling import eventually

from .connectors_support import TENANT, activities, harness, now_utc

ANA = "ana@acme.example"
BO = "bo@acme.example"


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


async def test_add_shows_the_backfill_until_done_then_list_pause_resume(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine, tmp_path: Path
) -> None:
    async with harness(
        kafka_settings, database_settings, db_engine, {"internal_domains": ["acme.example"]}
    ) as h:
        now = now_utc()
        for index in range(5):
            h.fake.add_message(
                ANA, f"a-{index}", now - timedelta(hours=6 * index), "Buyer <buyer@globex.example>", ANA
            )
        key_file = tmp_path / "key.json"
        key_file.write_text(h.service_account)
        env = {
            "DATABASE_URL": database_settings.url.get_secret_value(),
            "SPM_SECRET_KEY": TEST_SECRET_KEY,
            "SPM_LOG_JSON": "false",
        }
        args = [
            "connectors", "add", "gmail", "--tenant", TENANT, "--service-account-file", str(key_file),
            "--users", f"{ANA},{BO}", "--backfill-days", "3",
        ]  # fmt: skip
        adding = asyncio.create_task(asyncio.to_thread(CliRunner().invoke, _cli(), args, env=env))

        # The connectors process (here: one pass of its loop) does the backfill the CLI displays.
        async def mailboxes() -> int:
            async with db_engine.connect() as conn:
                return int(await conn.scalar(text("SELECT count(*) FROM connector_mailboxes")) or 0)

        await eventually(mailboxes, lambda count: count == 2, 60, "`connectors add` connecting 2 mailboxes")
        assert sorted(r.fetched for r in await sync_due(h.deps)) == [0, 5]
        added = await adding
        assert added.exit_code == 0, added.output
        assert "connected 2 mailbox(es)" in added.output
        assert f"gmail {ANA}" in added.output
        assert "5 fetched, ok" in added.output
        assert len(await activities(db_engine, kafka_settings, "gmail", 5)) == 5
        # The key is stored encrypted and never printed.
        async with db_engine.connect() as conn:
            stored = await conn.scalar(text("SELECT credentials_encrypted FROM connector_connections"))
        assert "PRIVATE KEY" not in str(stored)
        assert "PRIVATE KEY" not in added.output

        def run(*command: str) -> str:
            result = CliRunner().invoke(_cli(), ["connectors", *command], env=env)
            assert result.exit_code == 0, result.output
            return result.output

        listed = await asyncio.to_thread(run, "list", "--tenant", TENANT)
        rows = [line.split("│") for line in listed.splitlines() if ANA in line or BO in line]
        assert [[c.strip() for c in row[1:6]] for row in rows] == [
            [TENANT, "gmail", ANA, "ok", "5"],
            [TENANT, "gmail", BO, "ok", "0"],
        ]
        assert (
            await asyncio.to_thread(run, "pause", "--tenant", TENANT, "--users", BO)
            == "paused 1 mailbox(es)\n"
        )
        listed = await asyncio.to_thread(run, "list")
        assert [line.split("│")[4].strip() for line in listed.splitlines() if BO in line] == ["paused"]
        async with db_engine.begin() as conn:
            await conn.execute(text("UPDATE connector_mailboxes SET next_sync_at = now()"))
        assert [r.mailbox_id for r in await sync_due(h.deps)] == [1]  # Bo is paused: not synced
        assert await asyncio.to_thread(run, "resume", "--tenant", TENANT) == "resumed 1 mailbox(es)\n"
        assert sorted(r.mailbox_id for r in await sync_due(h.deps)) == [2]
        # A tenant that does not exist is an error, not an empty table or "0 mailbox(es)".
        for command in (
            ("list", "--tenant", "nope"),
            ("pause", "--tenant", "nope"),
            ("resume", "--tenant", "nope"),
        ):
            result = await asyncio.to_thread(CliRunner().invoke, _cli(), ["connectors", *command], env=env)
            assert (result.exit_code, result.output.strip()) == (1, "no tenant 'nope'")
