"""Alembic environment: runs migrations over an async engine under an advisory lock."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

# Several replicas may start ``spm migrate`` at once; one runs, the others wait then find nothing to do.
_LOCK_ID = 7_311_002


def _run(connection: Connection) -> None:
    # Session-level lock: released when the connection closes, whatever happened.
    connection.execute(text(f"SELECT pg_advisory_lock({_LOCK_ID})"))
    connection.commit()
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        # Closes the connection, releasing the advisory lock, also when a migration raised (a
        # pooled connection kept open would keep the lock held for the next run in this process).
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `spm migrate` against the database")
asyncio.run(_main())
