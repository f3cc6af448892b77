"""One poll loop for the integration tests: probe until a condition holds or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

#: Marks "no value yet" for a probe (``None`` can be a real answer).
PENDING: Any = object()


async def eventually(
    probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], deadline_s: float, what: str
) -> Any:
    """The first value of ``probe()`` that satisfies ``done``; fails naming ``what`` and the last value."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        value = await probe()
        if value is not PENDING:
            last = value
            if done(value):
                return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not met within {deadline_s}s; last: {last}")


async def poll_rows(
    engine: AsyncEngine, sql: str, params: dict[str, Any], done: Any, deadline_s: float = 30
) -> Any:
    """The rows of ``sql`` (as tuples) once ``done(rows)`` holds."""

    async def probe() -> list[tuple[Any, ...]]:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql), params)]

    return await eventually(probe, done, deadline_s, "condition")


async def poll_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any, deadline_s: float = 30
) -> Any:
    """The JSON body of a 200 from ``GET url`` once ``done(body)`` holds."""

    async def probe() -> Any:
        response = await client.get(url, headers=headers)
        return response.json() if response.status_code == 200 else PENDING

    return await eventually(probe, done, deadline_s, "condition")
