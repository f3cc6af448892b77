"""The live leaderboard over real HTTP: events on change, the query-string token, the per-key cap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewayOptions
from tests.integration.polling import eventually

from .gateway_support import Keys, bearer, gateway_settings, served


async def _next_event(lines: AsyncIterator[str]) -> tuple[str, dict[str, Any]]:
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            return event, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


async def test_stream_sends_the_leaderboard_and_its_changes(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions, db_engine: AsyncEngine
) -> None:
    options = gateway_options.model_copy(
        update={
            "stream_interval_seconds": 0.2,
            "stream_heartbeat_seconds": 0.6,
            "stream_max_connections_per_key": 1,
        }
    )
    app = create_app(gateway_settings(database_settings, options))
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        url = f"/v1/stream/leaderboard?period=week&metric=score&access_token={keys.read}"
        async with client.stream("GET", url) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            event, board = await _next_event(lines)
            assert event == "leaderboard"
            assert [e["rep_id"] for e in board["entries"]] == ["rep-2", "rep-1", "rep-4", "rep-3"]

            # One stream per key in this configuration: a second is refused while this one is open.
            second = await client.get(url)
            assert second.status_code == 429
            assert second.headers["retry-after"] == "15"

            async with db_engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE metric_rollups SET score = 55 WHERE tenant_id = 'acme' AND level = 'rep' "
                        "AND entity_id = 'rep-3' AND granularity = 'week' AND period_start = '2026-11-02'"
                    )
                )
            event, board = await asyncio.wait_for(_next_event(lines), timeout=30)
            assert event == "leaderboard"
            assert [(e["rep_id"], e["value"]) for e in board["entries"]][:2] == [
                ("rep-3", 55.0),
                ("rep-2", 40.0),
            ]
            # Nothing changes any more: a heartbeat comment follows instead of an event.
            heartbeat = await asyncio.wait_for(anext(line async for line in lines if line), timeout=30)
            assert heartbeat == ": heartbeat"

        # Closing the stream gives its slot back.
        async def reopened() -> int:
            async with client.stream("GET", url) as again:
                return again.status_code

        await eventually(reopened, lambda status: status == 200, 30, "the stream slot released")


async def test_stream_refuses_bad_credentials_and_parameters(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    app = create_app(gateway_settings(database_settings, gateway_options))
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        assert (await client.get("/v1/stream/leaderboard")).status_code == 401
        assert (await client.get("/v1/stream/leaderboard?access_token=spm_read_x_y")).status_code == 401
        ingest = await client.get(f"/v1/stream/leaderboard?access_token={keys.ingest}")
        assert ingest.status_code == 403
        metric = await client.get("/v1/stream/leaderboard?metric=vibes", headers=bearer(keys.read))
        assert metric.status_code == 422
        assert metric.json()["errors"][0]["field"] == "metric"
        foreign = await client.get("/v1/stream/leaderboard?team_id=team-z", headers=bearer(keys.read))
        assert foreign.status_code == 404
        # The query-string credential is for the stream only.
        plain = await client.get(f"/v1/leaderboard?access_token={keys.read}")
        assert plain.status_code == 401
