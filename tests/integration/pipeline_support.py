"""The whole path in-process for property and fuzz tests: reference data, calls, and a drain.

``drained`` waits until attribution has committed everything on its input topics and metrics
everything attribution published: after it, the database holds the pipeline's final state, so
tests assert exact figures instead of polling for them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from libs.common.settings import KafkaSettings
from libs.common.topics import (
    ACTIVITY_ATTRIBUTED,
    ACTIVITY_INGESTED,
    ATTRIBUTION_OVERRIDDEN,
    CRM_ENTITY_CHANGED,
    Topic,
)
from services.attribution.settings import AttributionOptions
from services.metrics.settings import MetricsOptions
from tests.integration.polling import pauses

REP_PHONE = "+14155550001"
BUYER_PHONE = "+12125550100"
T0 = "2026-11-02T15:00:00Z"

#: One rep on one team, whose calls with one buyer contact attribute to one deal.
CRM: dict[str, Any] = {
    "source": "test",
    "entities": [
        {"entity_type": "team", "id": "team-a", "name": "A", "updated_at": T0},
        {"entity_type": "rep", "id": "rep-1", "name": "Ana", "phones": [REP_PHONE], "updated_at": T0},
        {
            "entity_type": "team_membership",
            "id": "m1",
            "rep_id": "rep-1",
            "team_id": "team-a",
            "valid_from": "2026-01-01",
            "updated_at": T0,
        },
        {"entity_type": "account", "id": "acc-1", "name": "Buyer", "updated_at": T0},
        {
            "entity_type": "contact",
            "id": "con-1",
            "phones": [BUYER_PHONE],
            "account_id": "acc-1",
            "updated_at": T0,
        },
        {
            "entity_type": "deal",
            "id": "deal-1",
            "account_id": "acc-1",
            "owner_rep_id": "rep-1",
            "created_at": "2026-10-01T00:00:00Z",
            "updated_at": T0,
        },
    ],
}


def call(external_id: str, **fields: Any) -> dict[str, Any]:
    """A connected call of rep-1 with the buyer: attributed to rep-1 and deal-1."""
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-02T17:00:00Z",
        "duration_seconds": 40,
        "participants": [
            {"phone": REP_PHONE, "role": "caller"},
            {"phone": BUYER_PHONE, "role": "callee"},
        ],
        **fields,
    }


def inbound_call(external_id: str, caller: dict[str, str], **fields: Any) -> dict[str, Any]:
    """``caller`` (a participant's phone, or email) calling rep-1's line: a connected call, as a
    dialer posts it to ``/v1/events``."""
    return call(
        external_id,
        direction="inbound",
        participants=[{**caller, "role": "caller"}, {"phone": REP_PHONE, "role": "callee"}],
        **fields,
    )


async def _behind(consumer: AIOKafkaConsumer, kafka: KafkaSettings, topics: tuple[Topic, ...]) -> int:
    """Messages on ``topics`` the consumer's group has not committed yet."""
    partitions = [
        TopicPartition(topic.physical(kafka.topic_prefix), partition)
        for topic in topics
        for partition in consumer.partitions_for_topic(topic.physical(kafka.topic_prefix)) or ()
    ]
    ends = await consumer.end_offsets(partitions)
    behind = 0
    for tp in partitions:
        behind += max(0, ends[tp] - (await consumer.committed(tp) or 0))
    return behind


async def drained(kafka: KafkaSettings, deadline_s: float = 60.0, *, metrics_runs: bool = True) -> None:
    """Return once attribution (activities, CRM changes, overrides) and then metrics committed
    everything; fail past ``deadline_s``.
    Without ``metrics_runs`` (a stack without metrics), once attribution did.

    A consumer that stopped (a poison message retried forever) never drains: the test fails.
    """
    groups = (AttributionOptions().group_id, *((MetricsOptions().group_id,) if metrics_runs else ()))
    consumers = {
        group: AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        for group in groups
    }
    attribution, *metrics = consumers.values()
    for consumer in consumers.values():
        await consumer.start()
    try:
        for consumer in consumers.values():
            await consumer.topics()  # fetches every topic's partitions
        deadline = time.monotonic() + deadline_s
        left = -1
        waits = pauses(0.1)
        while time.monotonic() < deadline:
            # Attribution first: once it committed its input, everything it publishes is on the topic.
            left = await _behind(
                attribution, kafka, (ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, ATTRIBUTION_OVERRIDDEN)
            )
            if left == 0 and metrics:
                left = await _behind(metrics[0], kafka, (ACTIVITY_ATTRIBUTED,))
            if left == 0:
                return
            await asyncio.sleep(next(waits))
        raise AssertionError(f"the pipeline did not drain within {deadline_s}s: {left} messages behind")
    finally:
        for consumer in consumers.values():
            await consumer.stop()
