"""Async engine and session factory built from :class:`DatabaseSettings`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from libs.common.db.array_codecs import register_array_codecs
from libs.common.settings import DatabaseSettings
from libs.common.telemetry import current_tally, tally


def make_engine(settings: DatabaseSettings, application_name: str) -> AsyncEngine:
    """An engine whose connections identify the service, bound every statement's time and encode
    numeric array parameters without asyncpg's per-element checks (``array_codecs``)."""
    engine = create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_pre_ping=settings.pool_pre_ping,
        pool_recycle=settings.pool_recycle_seconds,
        echo=settings.echo,
        connect_args={
            "server_settings": {
                "application_name": application_name,
                "statement_timeout": str(settings.statement_timeout_ms),
            },
            "timeout": 10,
        },
    )
    event.listen(engine.sync_engine, "connect", _on_connect)
    event.listen(engine.sync_engine, "before_cursor_execute", _before_statement)
    event.listen(engine.sync_engine, "after_cursor_execute", _after_statement)
    return engine


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()``: one transaction, committed when the block ends without an error; the
    COMMIT's round trip (the WAL flush) is added to the consumer batch's tally as ``commit``."""
    async with engine.connect() as conn:
        async with conn.begin():
            yield conn
            started = perf_counter()
        tally("commit", perf_counter() - started)


def _before_statement(conn: Any, *_: Any) -> None:
    # Only inside a consumer's batch (``telemetry.tallying``): elsewhere one context read.
    if current_tally() is not None:
        conn.info["spm_statement_started"] = perf_counter()


def _after_statement(conn: Any, *_: Any) -> None:
    """A statement's round trip (sent, executed, its rows read) added to the batch's tally."""
    started = conn.info.pop("spm_statement_started", None)
    if started is not None:
        tally("statements", perf_counter() - started)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.run_async(register_array_codecs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay usable after commit: handlers read what they wrote without reloading.
    return async_sessionmaker(engine, expire_on_commit=False)


async def database_reachable(engine: AsyncEngine, within_seconds: float = 2.0) -> bool:
    """Readiness probe: does ``SELECT 1`` answer within ``within_seconds``?"""
    try:
        async with asyncio.timeout(within_seconds):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except (TimeoutError, OSError, DBAPIError, OperationalError):
        return False
