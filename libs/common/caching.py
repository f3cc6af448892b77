"""A read-through cache for values every request needs and that change rarely."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LoadingCache(Generic[K, V]):
    """Values loaded on demand and kept for the lifetime their loader gives them.

    Requests that miss together share one load: when a hot entry lapses under load, hundreds
    of waiting requests would otherwise each take a pooled database connection. ``fresh``
    skips the cached value (and any load in flight) and replaces the entry.

    A full cache drops its least recently used entry. Values ``negative`` tells apart (a
    tenant that does not exist, a source with no secret) live in a second, smaller LRU of
    ``max_negative`` entries: anyone can ask about made-up keys (a webhook names its tenant in
    the URL before it is authenticated), and those answers must never push a real tenant's
    entry out.
    """

    def __init__(
        self,
        load: Callable[[K], Awaitable[tuple[V, float]]],
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
        *,
        negative: Callable[[V], bool] | None = None,
        max_negative: int = 1_000,
    ) -> None:
        #: ``key -> (value, seconds it stays valid)``.
        self.load = load
        self.clock = clock
        self.max_entries = max_entries
        self.negative = negative
        self.max_negative = max_negative
        #: ``key -> (valid until, value, loaded at)``.
        self._entries: OrderedDict[K, tuple[float, V, float]] = OrderedDict()
        self._negatives: OrderedDict[K, tuple[float, V, float]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}
        #: Bumped by :meth:`invalidate`, so a load that started before it is not cached.
        self._generation = 0
        self._invalidated: dict[K, int] = {}

    async def get(self, key: K, *, fresh: bool = False) -> V:
        if not fresh:
            for entries in (self._entries, self._negatives):
                cached = entries.get(key)
                if cached is not None and cached[0] > self.clock():
                    entries.move_to_end(key)
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

    def negative_age(self, key: K) -> float | None:
        """Seconds since ``key``'s cached negative answer (no such tenant, no secret) was loaded,
        None when none is cached and still valid."""
        cached = self._negatives.get(key)
        if cached is None or cached[0] <= self.clock():
            return None
        return self.clock() - cached[2]

    def invalidate(self, key: K | None = None) -> None:
        """Forget ``key`` (every key when None); a load already in flight is not kept either."""
        if key is None:
            self._entries.clear()
            self._negatives.clear()
            self._loading.clear()
            self._generation += 1
            return
        self._entries.pop(key, None)
        self._negatives.pop(key, None)
        self._invalidated[key] = self._invalidated.get(key, 0) + 1
        self._loading.pop(key, None)

    async def _load(self, key: K, generation: int, invalidated: int) -> V:
        started = self.clock()
        value, lifetime = await self.load(key)
        if generation != self._generation or invalidated != self._invalidated.get(key, 0):
            # Invalidated while loading: the value may predate the change, so it is not kept.
            return value
        is_negative = self.negative is not None and self.negative(value)
        entries, other = (self._negatives, self._entries) if is_negative else (self._entries, self._negatives)
        limit = self.max_negative if is_negative else self.max_entries
        other.pop(key, None)
        entries.pop(key, None)
        while entries and len(entries) >= limit:
            entries.popitem(last=False)  # the least recently used
        entries[key] = (started + lifetime, value, started)
        return value
