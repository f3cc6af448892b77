"""ETags and Cache-Control on successful reads: a weak hash of the body, 304 on a match."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from fastapi import Request, Response


def weak_etag(body: bytes) -> str:
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def _matches(if_none_match: str, etag: str) -> bool:
    # Weak comparison (RFC 9110 13.1.2): the opaque tags match whatever their W/ prefix.
    wanted = etag.removeprefix("W/")
    return any(
        tag.strip() == "*" or tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(",")
    )


def etag_middleware(
    max_age: int,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Tag every 200 JSON answer to a ``GET /v1/...``; streams pass through untouched."""

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if (
            request.method != "GET"
            or response.status_code != 200
            or not request.url.path.startswith("/v1/")
            or response.headers.get("content-type") != "application/json"
        ):
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        etag = weak_etag(body)
        headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}", "Vary": "Authorization"}
        if_none_match = request.headers.get("if-none-match")
        if if_none_match and _matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        kept = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(body, status_code=200, headers={**kept, **headers}, media_type="application/json")

    return middleware
