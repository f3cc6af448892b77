"""The consumer's fetch wait comes from the policy: the embedded broker answers a waiting fetch
only when its wait is over, even once data has arrived, so this bounds each hop's latency."""

from __future__ import annotations

from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from libs.common.kafka import runner as runner_module
from libs.common.kafka.runner import ConsumerRunner
from libs.common.settings import ConsumerSettings, KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED


class _Stop(Exception):
    pass


class _Consumer:
    made: list[dict[str, Any]] = []

    def __init__(self, **options: Any) -> None:
        _Consumer.made.append(options)

    def subscribe(self, **_: Any) -> None:
        raise _Stop


@pytest.mark.parametrize(("policy", "expected"), [({}, 100), ({"fetch_max_wait_ms": 37}, 37)])
async def test_the_consumer_is_made_with_the_policys_fetch_wait(
    monkeypatch: pytest.MonkeyPatch, policy: dict[str, Any], expected: int
) -> None:
    _Consumer.made = []
    monkeypatch.setattr(runner_module, "AIOKafkaConsumer", _Consumer)
    runner = ConsumerRunner(
        service="tests",
        group_id="g",
        topics=[ACTIVITY_INGESTED],
        handler=cast(Any, None),
        kafka=KafkaSettings(),
        policy=ConsumerSettings(**policy),
        producer=cast(AIOKafkaProducer, None),
    )
    with pytest.raises(_Stop):
        await runner.run()
    assert [options["fetch_max_wait_ms"] for options in _Consumer.made] == [expected]
