"""The live leaderboard over Server-Sent Events.

An open stream re-checks its credential every ``GATEWAY_CREDENTIAL_RECHECK_SECONDS`` (30 s at
most) and ends, with a ``revoked`` event, once the key or session is revoked or expired, the
JWT expired, or the tenant is gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from libs.common.web import Problem
from services.gateway.auth import Caller, CredentialKind, StreamCallerDep, credential_holds
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
    """Open streams per (tenant, subject), so one credential cannot hold every connection, and per
    tenant, so one tenant's sign-ins cannot hold every stream of the replica."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], int] = {}
        self._tenants: dict[str, int] = {}

    def acquire(self, bucket: tuple[str, str], limit: int, tenant_limit: int) -> str | None:
        """Take a slot; else what is full (``"tenant"``, or None when the slot was taken)."""
        if self._tenants.get(bucket[0], 0) >= tenant_limit:
            return "tenant"
        if self._open.get(bucket, 0) >= limit:
            return "bucket"
        self._open[bucket] = self._open.get(bucket, 0) + 1
        self._tenants[bucket[0]] = self._tenants.get(bucket[0], 0) + 1
        return None

    def release(self, bucket: tuple[str, str]) -> None:
        _give_back(self._open, bucket)
        _give_back(self._tenants, bucket[0])


def _give_back(counts: dict[Any, int], key: Any) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


#: The last event of a stream whose credential no longer holds; the client must sign in again.
REVOKED_EVENT = 'event: revoked\ndata: {"detail":"the credential was revoked or expired"}\n\n'


async def _events(
    request: Request,
    caller: Caller,
    *,
    team_id: str | None,
    period: Granularity,
    metric: LeaderboardMetric,
    limit: int,
) -> AsyncIterator[str]:
    options = request.app.state.settings.gateway
    engine = request.app.state.engine
    last_body: str | None = None
    last_sent = last_check = time.monotonic()
    yield f"retry: {int(options.stream_interval_seconds * 1000)}\n\n"
    while not await request.is_disconnected():
        if time.monotonic() - last_check >= options.credential_recheck_seconds:
            if not await credential_holds(engine, caller):
                yield REVOKED_EVENT
                return
            last_check = time.monotonic()
        async with engine.connect() as conn:
            board = await read_leaderboard(
                conn,
                caller.principal.tenant_id,
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
        # Wake for the next read or the next credential check, whichever is due first.
        next_check = last_check + options.credential_recheck_seconds - time.monotonic()
        await asyncio.sleep(max(0.0, min(options.stream_interval_seconds, next_check)))


@router.get(
    "/leaderboard",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`leaderboard` events"}},
)
async def leaderboard_stream(
    request: Request,
    caller: StreamCallerDep,
    options: OptionsDep,
    team_id: TeamQuery = None,
    period: PeriodQuery = Granularity.WEEK,
    metric: MetricQuery = LeaderboardMetric.SCORE,
    limit: LimitQuery = None,
) -> StreamingResponse:
    """Send the leaderboard of the latest period whenever it changes, and a heartbeat comment when idle.

    The dashboard authenticates with its session cookie; API clients that cannot set headers
    may send ``?access_token=<key or JWT>`` (this route only).
    """
    size = page_size(limit, options)
    principal = caller.principal
    # A fresh check, past the credential caches: a client reconnecting after its stream was
    # ended for a revoked credential must not get a new one.
    if not await credential_holds(request.app.state.engine, caller):
        raise Problem(
            401,
            "Unauthorized",
            "the credential is unknown, revoked, expired or invalid",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Validate the team and the parameters before the stream opens, so errors are plain problems.
    async with request.app.state.engine.connect() as conn:
        await read_leaderboard(
            conn, principal.tenant_id, team_id=team_id, period=period, day=None, metric=metric, limit=1
        )
    per_session = caller.kind is CredentialKind.SESSION
    limit_open = (
        options.stream_max_connections_per_session if per_session else options.stream_max_connections_per_key
    )
    full = request.app.state.stream_slots.acquire(
        caller.bucket, limit_open, options.stream_max_connections_per_tenant
    )
    if full is not None:
        holder = "tenant" if full == "tenant" else "session" if per_session else "credential"
        held = options.stream_max_connections_per_tenant if full == "tenant" else limit_open
        raise Problem(
            429,
            "Too many streams",
            f"this {holder} already holds {held} open streams",
            headers={"Retry-After": "15"},
        )
    return _SlotStream(
        _events(request, caller, team_id=team_id, period=period, metric=metric, limit=size),
        lambda: request.app.state.stream_slots.release(caller.bucket),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
