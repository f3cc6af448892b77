"""Bearer API-key authentication with a short positive cache.

The cache keeps hot paths (one webhook per call) off the database; a revoked key stops
working within ``ttl_seconds``.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.tenancy import Principal, authenticate


class ApiKeyAuthenticator:
    def __init__(
        self, engine: AsyncEngine, pepper: str, ttl_seconds: float = 30.0, max_entries: int = 10_000
    ) -> None:
        self.engine = engine
        self.pepper = pepper
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def principal(self, key: str) -> Principal | None:
        # Cache by a digest, never by the key itself.
        digest = hashlib.sha256(key.encode()).hexdigest()
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.engine.connect() as conn:
            principal = await authenticate(conn, key, self.pepper)
        if principal is not None:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[digest] = (now + self.ttl, principal)
        else:
            self._cache.pop(digest, None)
        return principal


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
