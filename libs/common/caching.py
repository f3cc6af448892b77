"""A read-through cache for values every request needs and that change rarely."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LoadingCache(Generic[K, V]):
    """Values loaded on demand and kept for the lifetime their loader gives them.

    Requests that miss together share one load: when a hot entry lapses under load, hundreds
    of waiting requests would otherwise each take a pooled database connection. ``fresh``
    skips the cached value (and any load in flight) and replaces the entry.
    """

    def __init__(
        self,
        load: Callable[[K], Awaitable[tuple[V, float]]],
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        #: ``key -> (value, seconds it stays valid)``.
        self.load = load
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}
        #: Bumped by :meth:`invalidate`, so a load that started before it is not cached.
        self._generation = 0
        self._invalidated: dict[K, int] = {}

    async def get(self, key: K, *, fresh: bool = False) -> V:
        cached = self._entries.get(key)
        if not fresh and cached is not None and cached[0] > self.clock():
            return cached[1]
        loading = None if fresh else self._loading.get(key)
        if loading is None:
            # The invalidation counters are read now, not when the task first runs: an
            # invalidation in between must still keep this load's value out of the cache.
            loading = asyncio.ensure_future(self._load(key, self._generation, self._invalidated.get(key, 0)))
            if not fresh:
                self._loading[key] = loading
                loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    def invalidate(self, key: K | None = None) -> None:
        """Forget ``key`` (every key when None); a load already in flight is not kept either."""
        if key is None:
            self._entries.clear()
            self._loading.clear()
            self._generation += 1
            return
        self._entries.pop(key, None)
        self._invalidated[key] = self._invalidated.get(key, 0) + 1
        self._loading.pop(key, None)

    async def _load(self, key: K, generation: int, invalidated: int) -> V:
        started = self.clock()
        value, lifetime = await self.load(key)
        if generation != self._generation or invalidated != self._invalidated.get(key, 0):
            # Invalidated while loading: the value may predate the change, so it is not kept.
            return value
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (started + lifetime, value)
        return value
