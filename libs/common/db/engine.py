"""Async engine and session factory built from :class:`DatabaseSettings`."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from libs.common.db.array_codecs import register_array_codecs
from libs.common.settings import DatabaseSettings


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
    return engine


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
