"""ETags and Cache-Control on successful reads: a weak hash of the body, 304 on a match."""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Headers this middleware sets; a response's own values for them are replaced.
_TAGGING_HEADERS = (b"etag", b"cache-control", b"vary")


def weak_etag(body: bytes) -> str:
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def _matches(if_none_match: str, etag: str) -> bool:
    # Weak comparison (RFC 9110 13.1.2): the opaque tags match whatever their W/ prefix.
    wanted = etag.removeprefix("W/")
    return any(
        tag.strip() == "*" or tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(",")
    )


class ETagMiddleware:
    """Tag every 200 JSON answer to a ``GET /v1/...``; streams, ``no-store`` answers and other answers
    pass through untouched.

    A plain ASGI middleware rather than ``@app.middleware("http")``: that style runs every request
    in an extra task and copies the body through a memory stream, a fixed cost on each read.
    """

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.cache_control = f"private, max-age={max_age}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        passthrough = False
        chunks: list[bytes] = []

        async def tag(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
            elif message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                # An answer that must not be kept (``no-store``: an export of a person) keeps its own.
                if (
                    message["status"] != 200
                    or headers.get("content-type") != "application/json"
                    or "no-store" in headers.get("cache-control", "")
                ):
                    passthrough = True
                    await send(message)
                else:
                    start = message  # held until the whole body is known
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_tagged(scope, start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, tag)

    async def _send_tagged(self, scope: Scope, start: Message, body: bytes, send: Send) -> None:
        etag = weak_etag(body)
        tagging = [
            (b"etag", etag.encode()),
            (b"cache-control", self.cache_control),
            (b"vary", b"Accept, Authorization, Cookie"),
        ]
        if_none_match = Headers(scope=scope).get("if-none-match")
        if if_none_match and _matches(if_none_match, etag):
            await send({"type": "http.response.start", "status": 304, "headers": tagging})
            await send({"type": "http.response.body", "body": b""})
            return
        kept = [(k, v) for k, v in start["headers"] if k.lower() not in _TAGGING_HEADERS]
        await send({**start, "headers": kept + tagging})
        await send({"type": "http.response.body", "body": body})
