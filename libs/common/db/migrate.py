"""Programmatic Alembic against ``DATABASE_URL`` (used by ``spm migrate`` and tests): ``upgrade``
to head, ``downgrade`` to a revision (a rollback), and where a database stands."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``. Safe to run concurrently with itself (advisory lock)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision`` (each migration in its own transaction, under
    the same advisory lock); ``alembic.util.CommandError`` for a revision this release does not know."""
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration this release ships."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """Every migration this release ships, newest first."""
    return [script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()]


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; None before its first migration."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if await conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
                return None
            value = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            return None if value is None else str(value)
    finally:
        await engine.dispose()
