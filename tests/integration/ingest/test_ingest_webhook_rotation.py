"""``spm webhooks rotate``: the new secret is printed once and valid at once; the older ones
stay valid for the grace period only."""

from __future__ import annotations

import asyncio

import pytest
import typer
from typer.testing import CliRunner

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings
from libs.common.tenancy import create_tenant, webhook_secrets
from libs.common.testing.stack import TEST_SECRET_KEY
from spm.commands.webhooks import register


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def _create(database: DatabaseSettings) -> str:
    engine = make_engine(database, "tests")
    try:
        async with engine.begin() as conn:
            created = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    finally:
        await engine.dispose()
    secrets: dict[str, str] = created["webhook_secrets"]  # type: ignore[assignment]
    return secrets["twilio"]


async def _valid(database: DatabaseSettings) -> list[str]:
    engine = make_engine(database, "tests")
    try:
        async with engine.connect() as conn:
            return await webhook_secrets(conn, "acme", "twilio", TEST_SECRET_KEY)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("grace", "old_still_valid"), [("24", True), ("0", False)])
def test_rotate_prints_a_new_secret_and_expires_the_old_after_the_grace(
    grace: str, old_still_valid: bool, database_settings: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = asyncio.run(_create(database_settings))
    monkeypatch.setenv("DATABASE_URL", database_settings.url.get_secret_value())
    monkeypatch.setenv("SPM_SECRET_KEY", TEST_SECRET_KEY)

    result = CliRunner().invoke(
        _cli(), ["webhooks", "rotate", "--tenant", "acme", "--source", "twilio", "--grace-hours", grace]
    )

    assert result.exit_code == 0, result.output
    new = result.output.splitlines()[1]
    assert len(new) == 43
    assert new != old
    assert asyncio.run(_valid(database_settings)) == ([new, old] if old_still_valid else [new])


def test_rotate_refuses_an_unknown_tenant(
    database_settings: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_settings.url.get_secret_value())
    result = CliRunner().invoke(_cli(), ["webhooks", "rotate", "--tenant", "nobody", "--source", "zoom"])
    assert result.exit_code == 1
    assert "no tenant 'nobody'" in result.output
