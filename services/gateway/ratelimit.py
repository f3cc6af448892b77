"""Per-credential token buckets, in memory (one bucket per (tenant, subject) per gateway replica).

Keyed by the tenant too: a JWT subject is only unique within its issuer's tenant, so two
tenants' tokens with the same ``sub`` must not share (or exhaust) one bucket.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests per key, in bursts of up to ``per_minute``, refilled continuously."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, key: tuple[str, str]) -> float | None:
        """Spend one token of ``key``: None when allowed, else the seconds until a token is due."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                # Full buckets are the default state, so forgetting them grants nothing extra.
                self._buckets = {k: b for k, b in self._buckets.items() if b.tokens < self.capacity}
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def refund(self, key: tuple[str, str]) -> None:
        """Give back the token ``take`` just spent (a later check refused the request)."""
        if (bucket := self._buckets.get(key)) is not None:
            bucket.tokens = min(self.capacity, bucket.tokens + 1.0)

    def remaining(self, key: tuple[str, str]) -> int:
        bucket = self._buckets.get(key)
        return int(self.capacity) if bucket is None else math.floor(bucket.tokens)

    def seconds_to_full(self, key: tuple[str, str]) -> int:
        """Whole seconds until ``key``'s bucket is full again, as of its last ``take``."""
        bucket = self._buckets.get(key)
        return 0 if bucket is None else math.ceil((self.capacity - bucket.tokens) / self.rate)


#: Where ``services.gateway.auth`` leaves the caller's budget for :class:`RateLimitHeaders`.
STATE_KEY = "rate_limit_headers"


class RateLimitHeaders:
    """``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` on every answer to a
    request the rate limit counted (429s included), so a client paces itself before it is refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_budget(message: Message) -> None:
            budget = (scope.get("state") or {}).get(STATE_KEY)
            if message["type"] == "http.response.start" and budget is not None:
                names = (b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset")
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers += [(name, str(value).encode()) for name, value in zip(names, budget, strict=True)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_budget)
