"""The process runner: once the app has started, the startup heap is out of the collector's reach
and the young generation is collected less often."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from libs.common.collector import GC_THRESHOLDS
from libs.common.serve import _Server


async def test_startup_freezes_what_is_alive_once_the_app_started() -> None:
    made: list[dict[str, int]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        made.append({"resource": 1})  # a container the collector tracks
        yield

    gc.unfreeze()
    threshold = gc.get_threshold()
    config = uvicorn.Config(FastAPI(lifespan=lifespan), host="127.0.0.1", port=0, log_config=None)
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, no event)
                await asyncio.sleep(0.01)
        # What the lifespan made is frozen with the rest: no generation holds it any more.
        assert gc.get_freeze_count() > 0
        assert not any(o is made[0] for o in gc.get_objects())
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        server.should_exit = True
        await serving
        gc.unfreeze()
        gc.set_threshold(*threshold)
