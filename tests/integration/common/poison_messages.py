"""Messages as a buggy producer would put them straight onto the topics (no ingest in between).

Bodies are built as plain JSON, not through the contracts' models, so a poison value reaches
the consumer whatever the contracts accept at the door.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from libs.common.contracts.activities import activity_id_for
from libs.common.contracts.envelope import Envelope
from libs.common.settings import KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, Topic

#: Valid ISO 8601, but before year 1 once converted to UTC: PostgreSQL cannot store it.
OUT_OF_RANGE_UPDATED_AT = "0001-01-01T00:00:00+14:00"
#: A NUL byte: PostgreSQL text refuses it.
NUL_EXTERNAL_ID = "nul\x00byte"

Message = tuple[bytes, list[tuple[str, bytes]], bytes]


def call_message(
    tenant_id: str,
    external_id: str,
    occurred_at: datetime,
    *,
    caller: str,
    callee: str,
    seconds: int = 120,
    ingested_at: datetime | None = None,
) -> Message:
    """An ``activity-ingested`` message for a connected outbound call: value, headers, key."""
    activity_id = activity_id_for(tenant_id, "dialer", external_id)
    body: dict[str, Any] = {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": occurred_at.isoformat(),
        "duration_seconds": seconds,
        "participants": [{"phone": caller, "role": "caller"}, {"phone": callee, "role": "callee"}],
        "tenant_id": tenant_id,
        "activity_id": str(activity_id),
        "ingested_at": (ingested_at or occurred_at).isoformat(),
        "adapter_version": "canonical/1",
    }
    envelope = Envelope(
        id=f"{activity_id}:0",
        source="/ingest/dialer",
        type=ACTIVITY_INGESTED.event_type,
        subject=str(activity_id),
        tenant=tenant_id,
    )
    return orjson.dumps(body), envelope.to_headers(), str(activity_id).encode()


def crm_message(tenant_id: str, entity: dict[str, Any]) -> Message:
    """A ``crm-entity-changed`` message for one entity (``entity_type``, ``id``, ``updated_at``...)."""
    key = f"{tenant_id}:{entity['entity_type']}:{entity['id']}"
    envelope = Envelope(
        id=f"{key}:{entity['updated_at']}:{uuid.uuid4().hex[:6]}",
        source="/ingest/crm/test",
        type=CRM_ENTITY_CHANGED.event_type,
        subject=key,
        tenant=tenant_id,
    )
    body = {"tenant_id": tenant_id, "source": "test", "entity": entity}
    return orjson.dumps(body), envelope.to_headers(), key.encode()


def crm_for_one_rep(tenant_id: str, rep: str, rep_phone: str, contact_phone: str, at: str) -> list[Message]:
    """A rep, an account, a contact on it and a deal owned by the rep: calls rep -> contact credit the rep."""
    return [
        crm_message(
            tenant_id,
            {"entity_type": "rep", "id": rep, "name": rep, "phones": [rep_phone], "updated_at": at},
        ),
        crm_message(
            tenant_id,
            {"entity_type": "account", "id": f"acc-{rep}", "domains": [f"{rep}.example"], "updated_at": at},
        ),
        crm_message(
            tenant_id,
            {
                "entity_type": "contact",
                "id": f"con-{rep}",
                "phones": [contact_phone],
                "account_id": f"acc-{rep}",
                "updated_at": at,
            },
        ),
    ]


async def produce(kafka_settings: KafkaSettings, *batches: tuple[Topic, list[Message]]) -> None:
    """Put each batch's messages straight onto its topic, in order, and flush."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for topic, messages in batches:
            for value, headers, key in messages:
                await producer.send(
                    topic.physical(kafka_settings.topic_prefix), value, key=key, headers=headers
                )
        await producer.flush()
    finally:
        await producer.stop()
