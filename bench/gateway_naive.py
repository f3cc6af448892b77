"""The naive design served over the same HTTP stack as the gateway.

``python -m bench.gateway_naive`` serves, like ``spm run gateway`` (uvicorn, one process, uvloop +
httptools, 127.0.0.1, ``NAIVE_PORT``), the three questions of the gateway benchmark answered by
aggregating the raw ``naive_activities`` table at query time (``bench.gateway.NAIVE_*``), on
``NAIVE_DSN`` for tenant ``NAIVE_TENANT``. Answers are JSON encoded with orjson.

Authentication costs what the gateway's costs for a known API key once cached: a SHA-256 of the
bearer token compared with ``NAIVE_KEY_SHA256``. There is no rate limiting, no ETag and no
response-model validation, which favours this side.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import FastAPI, Header, Request, Response

from bench.gateway import NAIVE_LEADERBOARD, NAIVE_LISTING, NAIVE_REP_LISTING, NAIVE_REP_SCORES
from libs.common.serve import serve


def _json(content: Any) -> Response:
    # default=str: asyncpg's own UUID type is not one orjson encodes natively.
    return Response(orjson.dumps(content, default=str), media_type="application/json")


def create_app(dsn: str, tenant_id: str, key_sha256: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    def authorised(authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ").strip()
        return hashlib.sha256(token.encode()).hexdigest() == key_sha256

    async def fetch(request: Request, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows = await request.app.state.pool.fetch(sql, tenant_id, *args)
        return [dict(row) for row in rows]

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/v1/leaderboard")
    async def leaderboard(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """Reps ranked by score over the latest week, aggregated from the raw rows."""
        if not authorised(authorization):
            return Response(status_code=401)
        entries = await fetch(request, NAIVE_LEADERBOARD)
        return _json({"granularity": "week", "entries": entries})

    @app.get("/v1/reps/{rep_id}/scores")
    async def rep_scores(
        request: Request, rep_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """The rep's score and counters per day over the 400 days up to its latest activity."""
        if not authorised(authorization):
            return Response(status_code=401)
        periods = await fetch(request, NAIVE_REP_SCORES, rep_id)
        return _json({"rep_id": rep_id, "granularity": "day", "periods": periods})

    @app.get("/v1/activities")
    async def activities(
        request: Request,
        limit: int = 50,
        rep_id: str | None = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """The newest ``limit`` activities with their rep and team, of one rep when ``rep_id`` is given."""
        if not authorised(authorization):
            return Response(status_code=401)
        if rep_id is None:
            items = await fetch(request, NAIVE_LISTING, limit)
        else:
            items = await fetch(request, NAIVE_REP_LISTING, rep_id, limit)
        return _json({"items": items})

    return app


def main() -> None:
    app = create_app(os.environ["NAIVE_DSN"], os.environ["NAIVE_TENANT"], os.environ["NAIVE_KEY_SHA256"])
    sys.exit(serve(app, "127.0.0.1", int(os.environ["NAIVE_PORT"])))


if __name__ == "__main__":
    main()
