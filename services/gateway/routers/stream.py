"""The live leaderboard over Server-Sent Events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from libs.common.tenancy import Principal
from libs.common.web import Problem
from services.gateway.auth import StreamReaderDep
from services.gateway.deps import PROBLEM_RESPONSES, LimitQuery, OptionsDep, page_size
from services.gateway.routers.leaderboard import MetricQuery, PeriodQuery, TeamQuery, read_leaderboard
from services.gateway.schemas import Granularity, LeaderboardMetric

router = APIRouter(prefix="/v1/stream", tags=["stream"], responses=PROBLEM_RESPONSES)


class _SlotStream(StreamingResponse):
    """A streaming response that gives its connection slot back however the stream ends."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Released here rather than in the generator: a generator that never started has no finally.
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


class StreamSlots:
    """Open streams per credential, so one key cannot hold every connection."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._open: dict[str, int] = {}

    def acquire(self, key_id: str) -> bool:
        if self._open.get(key_id, 0) >= self.per_key:
            return False
        self._open[key_id] = self._open.get(key_id, 0) + 1
        return True

    def release(self, key_id: str) -> None:
        left = self._open.get(key_id, 0) - 1
        if left > 0:
            self._open[key_id] = left
        else:
            self._open.pop(key_id, None)


async def _events(
    request: Request,
    principal: Principal,
    *,
    team_id: str | None,
    period: Granularity,
    metric: LeaderboardMetric,
    limit: int,
) -> AsyncIterator[str]:
    options = request.app.state.settings.gateway
    last_body: str | None = None
    last_sent = time.monotonic()
    yield f"retry: {int(options.stream_interval_seconds * 1000)}\n\n"
    while not await request.is_disconnected():
        async with request.app.state.engine.connect() as conn:
            board = await read_leaderboard(
                conn,
                principal.tenant_id,
                team_id=team_id,
                period=period,
                day=None,
                metric=metric,
                limit=limit,
            )
        body = board.model_dump_json()
        now = time.monotonic()
        if body != last_body:
            last_body, last_sent = body, now
            yield f"event: leaderboard\ndata: {body}\n\n"
        elif now - last_sent >= options.stream_heartbeat_seconds:
            last_sent = now
            # A comment line keeps proxies from closing an idle connection.
            yield ": heartbeat\n\n"
        await asyncio.sleep(options.stream_interval_seconds)


@router.get(
    "/leaderboard",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`leaderboard` events"}},
)
async def leaderboard_stream(
    request: Request,
    principal: StreamReaderDep,
    options: OptionsDep,
    team_id: TeamQuery = None,
    period: PeriodQuery = Granularity.WEEK,
    metric: MetricQuery = LeaderboardMetric.SCORE,
    limit: LimitQuery = None,
) -> StreamingResponse:
    """Send the leaderboard of the latest period whenever it changes, and a heartbeat comment when idle.

    Browsers' ``EventSource`` cannot send headers, so this route alone also accepts
    ``?access_token=<key or JWT>``.
    """
    size = page_size(limit, options)
    # Validate the team and the parameters before the stream opens, so errors are plain problems.
    async with request.app.state.engine.connect() as conn:
        await read_leaderboard(
            conn, principal.tenant_id, team_id=team_id, period=period, day=None, metric=metric, limit=1
        )
    if not request.app.state.stream_slots.acquire(principal.key_id):
        raise Problem(
            429,
            "Too many streams",
            f"this credential already holds {options.stream_max_connections_per_key} open streams",
            headers={"Retry-After": "15"},
        )
    return _SlotStream(
        _events(request, principal, team_id=team_id, period=period, metric=metric, limit=size),
        lambda: request.app.state.stream_slots.release(principal.key_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
