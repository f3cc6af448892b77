"""LoadingCache: one load per concurrent miss, lifetimes from the loader, fresh reloads."""

from __future__ import annotations

import asyncio

from libs.common.caching import LoadingCache


class _Source:
    def __init__(self) -> None:
        self.loads: list[str] = []
        self.release = asyncio.Event()

    async def load(self, key: str) -> tuple[str, float]:
        self.loads.append(key)
        await self.release.wait()
        return f"{key}#{len(self.loads)}", 10.0


async def test_concurrent_misses_share_one_load() -> None:
    source = _Source()
    cache: LoadingCache[str, str] = LoadingCache(source.load)
    waiting = [asyncio.ensure_future(cache.get("acme")) for _ in range(50)]
    await asyncio.sleep(0)
    source.release.set()
    assert await asyncio.gather(*waiting) == ["acme#1"] * 50
    assert source.loads == ["acme"]


async def test_entries_live_for_the_loaders_lifetime_and_fresh_reloads() -> None:
    source = _Source()
    source.release.set()
    now = [100.0]
    cache: LoadingCache[str, str] = LoadingCache(source.load, clock=lambda: now[0])
    assert await cache.get("acme") == "acme#1"
    now[0] = 109.9
    assert await cache.get("acme") == "acme#1"
    assert await cache.get("acme", fresh=True) == "acme#2"
    now[0] = 120.0  # 10 s after the fresh load at 109.9
    assert await cache.get("acme") == "acme#3"
    assert source.loads == ["acme"] * 3


async def test_a_full_cache_drops_its_least_recently_used_entry() -> None:
    source = _Source()
    source.release.set()
    cache: LoadingCache[str, str] = LoadingCache(source.load, max_entries=2)
    await cache.get("a")
    await cache.get("b")
    assert await cache.get("a") == "a#1"  # "a" is now the most recently used
    await cache.get("c")  # drops "b", not "a"
    assert await cache.get("a") == "a#1"
    assert await cache.get("c") == "c#3"
    assert await cache.get("b") == "b#4"
    assert source.loads == ["a", "b", "c", "b"]


async def test_negative_answers_never_push_out_the_others() -> None:
    source = _Source()
    source.release.set()
    cache: LoadingCache[str, str] = LoadingCache(
        source.load, max_entries=2, negative=lambda v: v.startswith("ghost"), max_negative=3
    )
    assert await cache.get("acme") == "acme#1"
    for n in range(10_000):
        await cache.get(f"ghost-{n}")
    assert await cache.get("acme") == "acme#1"  # still cached: no load
    assert len(source.loads) == 10_001
    assert await cache.get("ghost-9999") == "ghost-9999#10001"  # the newest negatives are kept
    assert await cache.get("ghost-0") == "ghost-0#10002"  # the oldest were dropped


async def test_invalidate_drops_one_entry_or_all_and_a_load_begun_before_is_not_kept() -> None:
    source = _Source()
    source.release.set()
    cache: LoadingCache[str, str] = LoadingCache(source.load)
    assert (await cache.get("acme"), await cache.get("globex")) == ("acme#1", "globex#2")
    cache.invalidate("acme")
    assert (await cache.get("acme"), await cache.get("globex")) == ("acme#3", "globex#2")
    cache.invalidate()
    assert (await cache.get("acme"), await cache.get("globex")) == ("acme#4", "globex#5")

    # A change lands while a load is in flight: that load may predate it, so it is served once
    # to its waiters but not cached.
    source.release.clear()
    cache.invalidate("acme")
    loading = asyncio.ensure_future(cache.get("acme"))
    await asyncio.sleep(0)
    cache.invalidate("acme")
    source.release.set()
    assert await loading == "acme#6"
    assert await cache.get("acme") == "acme#7"
