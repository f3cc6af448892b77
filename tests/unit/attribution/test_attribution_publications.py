"""Publications of a batch: started beside the row writes, acknowledged in the order started."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from libs.common.contracts.attribution import ActivityAttributedV1
from services.attribution import handlers


class _Broker:
    """Records each publication's start and acknowledgement; acks wait for ``release``."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()

    async def publish(self, producer: Any, events: Sequence[Any], prefix: str) -> None:
        name = str(events[0])
        self.log.append(f"start {name}")
        await self.release.setdefault(name, asyncio.Event()).wait()
        if name in self.fail:
            raise RuntimeError(f"{name} not acknowledged")
        self.log.append(f"acked {name}")


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> _Broker:
    fake = _Broker()
    monkeypatch.setattr(handlers, "publish", fake.publish)
    return fake


def _events(name: str) -> list[ActivityAttributedV1]:
    return cast(list[ActivityAttributedV1], [name])


def _publications() -> handlers.Publications:
    return handlers.Publications(cast(AIOKafkaProducer, None), "")


async def test_a_later_publication_starts_after_the_earlier_one_is_acknowledged(broker: _Broker) -> None:
    publications = _publications()
    publications.start(_events("a"))
    publications.start(_events("b"))
    await asyncio.sleep(0.01)
    assert broker.log == ["start a"]
    broker.release["a"].set()
    broker.release.setdefault("b", asyncio.Event()).set()
    await publications.wait()
    assert broker.log == ["start a", "acked a", "start b", "acked b"]


async def test_wait_raises_when_a_publication_is_not_acknowledged(broker: _Broker) -> None:
    broker.fail.add("a")
    publications = _publications()
    publications.start(_events("a"))
    publications.start(_events("b"))
    broker.release.setdefault("a", asyncio.Event()).set()
    with pytest.raises(RuntimeError, match="a not acknowledged"):
        await publications.wait()
    assert "start b" not in broker.log


async def test_nothing_to_publish_starts_nothing(broker: _Broker) -> None:
    publications = _publications()
    publications.start([])
    await publications.wait()
    await publications.abandon()
    assert broker.log == []


async def test_abandon_cancels_what_is_still_waiting_for_acknowledgements(broker: _Broker) -> None:
    publications = _publications()
    publications.start(_events("a"))
    publications.start(_events("b"))
    await asyncio.sleep(0.01)
    await publications.abandon()
    assert broker.log == ["start a"]
    # Releasing the broker afterwards acknowledges nothing: the publications were cancelled.
    broker.release["a"].set()
    await asyncio.sleep(0.01)
    assert broker.log == ["start a"]
