"""The garbage collector waits while a consumer decodes or handles a batch, and only then."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator, Sequence
from typing import Any, cast

import asyncpg
import pytest

from libs.common.collector import collector_paused
from libs.common.kafka.runner import ConsumedMessage, Rejected
from tests.unit.common.test_poison_isolation import Consumer, Handler, message, runner, wrapped


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_pause_stops_automatic_collection_until_it_closes() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_reenable_when_the_last_one_closes() -> None:
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second consumer's batch is still in hand
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_failing_step_still_reenables_the_collector() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("handler failed")
    assert gc.isenabled()


async def test_the_handler_runs_paused_and_a_retrys_back_off_does_not() -> None:
    seen: list[bool] = []

    class Recording(Handler):
        async def __call__(self, messages: Sequence[ConsumedMessage[Any]]) -> Sequence[Rejected]:
            seen.append(gc.isenabled())
            if len(seen) == 1:
                # While the runner sleeps before the retry, the collector runs.
                asyncio.get_running_loop().call_soon(lambda: seen.append(gc.isenabled()))
                raise wrapped(asyncpg.exceptions.SerializationError("could not serialize"))
            return await super().__call__(messages)

    handler = Recording(set())
    rejected = await runner(handler)._handle_isolating(
        cast(Any, Consumer()), [message(n) for n in range(3)], budget=1_000
    )
    assert (rejected, handler.handled) == ([], [0, 1, 2])
    assert seen == [False, True, False]
    assert gc.isenabled()
