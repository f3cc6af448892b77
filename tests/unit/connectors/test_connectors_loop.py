"""The sync loop survives its own transient failures for a while, then gives up loudly."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from services.connectors import handlers
from services.connectors.adapters.store import MailboxStore
from services.connectors.handlers import SyncDeps, sync_forever
from services.connectors.settings import ConnectorsOptions


class FlakyStore:
    """claim_due fails ``failures`` times (the database unreachable), then finds nothing due."""

    def __init__(self, failures: int, stop: asyncio.Event) -> None:
        self.failures = failures
        self.calls = 0
        self.stop = stop

    async def claim_due(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("database unreachable")
        self.stop.set()
        return []

    async def lag_by_provider(self) -> dict[str, float]:
        return {}


def _deps(store: FlakyStore) -> SyncDeps:
    options = ConnectorsOptions(backoff_initial_seconds=0.001, backoff_max_seconds=0.002, poll_seconds=0.001)
    return SyncDeps(cast(MailboxStore, store), cast(Any, None), cast(Any, None), cast(Any, None), options)


async def test_the_loop_retries_a_transient_failure_then_carries_on() -> None:
    stop = asyncio.Event()
    store = FlakyStore(3, stop)
    await asyncio.wait_for(sync_forever(_deps(store), stop), timeout=5)
    assert store.calls == 4


async def test_the_loop_gives_up_past_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "LOOP_RETRY_DEADLINE_SECONDS", 0.05)
    stop = asyncio.Event()
    store = FlakyStore(10_000, stop)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(sync_forever(_deps(store), stop), timeout=5)
    assert 1 < store.calls < 10_000


class OneHangingMailbox:
    """claim_due hands out one mailbox once; its provider never answers."""

    def __init__(self) -> None:
        self.claims = 0

    async def claim_due(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.claims += 1
        return [SimpleNamespace(provider="hangs", mailbox_id=1, failures=0)] if self.claims == 1 else []

    async def lag_by_provider(self) -> dict[str, float]:
        return {}


async def test_a_shutdown_past_its_grace_stops_a_sync_that_never_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop keeps syncs running beside it; cancelled (the service's grace is over), it cancels
    them rather than waiting for a provider that never answers."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hangs(mailbox: Any, deps: Any) -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    monkeypatch.setitem(handlers.SYNCERS, "hangs", hangs)
    store = OneHangingMailbox()
    loop = asyncio.create_task(sync_forever(_deps(cast(Any, store)), asyncio.Event()))
    await asyncio.wait_for(started.wait(), timeout=5)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop, timeout=5)
    assert cancelled.is_set()


class OneMailboxNotSaved(OneHangingMailbox):
    """One mailbox whose sync ends but whose state cannot be saved (the database went away)."""

    async def record_success(self, mailbox: Any, interval: float) -> bool:
        raise ConnectionResetError("database went away")


async def test_a_sync_failing_while_the_loop_stops_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a normal stop the syncs under way finish; one that raises is logged, not dropped."""
    started = asyncio.Event()
    finish = asyncio.Event()

    async def waits(mailbox: Any, deps: Any) -> int:
        started.set()
        await finish.wait()
        return 0

    monkeypatch.setitem(handlers.SYNCERS, "hangs", waits)
    stop = asyncio.Event()
    loop = asyncio.create_task(sync_forever(_deps(cast(Any, OneMailboxNotSaved())), stop))
    await asyncio.wait_for(started.wait(), timeout=5)
    stop.set()
    finish.set()
    await asyncio.wait_for(loop, timeout=5)
    [record] = [r for r in caplog.records if r.message == "mailbox sync failed while stopping"]
    assert getattr(record, "mailbox_id", None) == 1
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ConnectionResetError)
