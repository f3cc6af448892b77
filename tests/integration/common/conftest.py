"""What the consumer-plumbing tests share: a valid activity message and a started producer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from libs.common.contracts.activities import ActivityIn, ActivityIngestedV1, activity_id_for
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.kafka.clients import make_producer
from libs.common.settings import KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED

NOW = datetime(2026, 11, 2, 15, tzinfo=UTC)


def activity_message(external_id: str, tenant: str = "acme") -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """A valid activity-ingested message (a 90 s connected call): value, envelope headers, key."""
    raw = ActivityIn.model_validate(
        {
            "source": "dialer",
            "external_id": external_id,
            "kind": "call",
            "direction": "outbound",
            "outcome": "connected",
            "occurred_at": NOW.isoformat(),
            "duration_seconds": 90,
            "participants": [{"phone": "+14155550001", "role": "caller"}],
        }
    )
    activity_id = activity_id_for(tenant, raw.source, raw.external_id)
    event = ActivityIngestedV1(
        **raw.model_dump(),
        tenant_id=tenant,
        activity_id=activity_id,
        ingested_at=NOW,
        adapter_version="canonical/1",
    )
    envelope = Envelope(
        id=f"{activity_id}:0",
        source="/ingest/dialer",
        type=ACTIVITY_INGESTED.event_type,
        subject=str(activity_id),
        tenant=tenant,
    )
    return encode_body(event), envelope.to_headers(), str(activity_id).encode()


@pytest.fixture
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(kafka_settings, "tests")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
