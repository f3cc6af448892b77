"""Ingest use cases: validate, normalise, filter, and publish with acknowledgement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from libs.common.contracts.activities import ActivityIn, ActivityIngestedV1, activity_id_for
from libs.common.contracts.crm import CrmEntityChangedV1, CrmSyncIn
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
from libs.common.web import Problem, field_errors
from services.ingest.adapters.publisher import KafkaPublisher, OutgoingMessage
from services.ingest.settings import IngestOptions
from services.ingest.telemetry import INGEST_EVENTS


@dataclass(frozen=True, slots=True)
class Accepted:
    activity_ids: tuple[str, ...]
    excluded: int = 0


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None


def parse_activity_batch(body: bytes, options: IngestOptions, now: datetime) -> list[ActivityIn]:
    """All-or-nothing validation: every bad item is reported with its index, field and reason."""
    document = _json(body)
    if not isinstance(document, dict) or not isinstance(document.get("activities"), list):
        raise Problem(
            422,
            "Invalid request",
            "the body must be an object with an `activities` array",
            errors=[{"in": "body", "field": "activities", "reason": "required array"}],
        )
    items: list[Any] = document["activities"]
    if not items:
        raise Problem(
            422,
            "Invalid request",
            "activities must not be empty",
            errors=[{"in": "body", "field": "activities", "reason": "empty array"}],
        )
    if len(items) > options.max_batch_activities:
        raise Problem(
            413,
            "Batch too large",
            f"at most {options.max_batch_activities} activities per request, got {len(items)}",
        )
    extra_keys = set(document) - {"activities"}
    errors: list[dict[str, Any]] = [
        {"in": "body", "field": key, "reason": "unknown field"} for key in sorted(extra_keys)
    ]
    parsed: list[ActivityIn] = []
    latest = now + timedelta(seconds=options.max_future_skew_seconds)
    earliest = now - timedelta(days=options.max_age_days)
    for index, item in enumerate(items):
        try:
            activity = ActivityIn.model_validate(item)
        except ValidationError as exc:
            errors.extend(field_errors(exc, prefix=("activities", index)))
            continue
        if activity.occurred_at > latest:
            errors.append(
                {
                    "in": "body",
                    "field": f"activities.{index}.occurred_at",
                    "reason": f"more than {options.max_future_skew_seconds} s in the future",
                }
            )
        elif activity.occurred_at < earliest:
            errors.append(
                {
                    "in": "body",
                    "field": f"activities.{index}.occurred_at",
                    "reason": f"older than {options.max_age_days} days",
                }
            )
        for p_index, participant in enumerate(activity.participants):
            if participant.phone is not None and not _is_e164(participant.phone):
                errors.append(
                    {
                        "in": "body",
                        "field": f"activities.{index}.participants.{p_index}.phone",
                        "reason": "must be an E.164 number such as +14155550100",
                    }
                )
        parsed.append(activity)
    if errors:
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:20])
        raise Problem(422, "Invalid activities", detail, errors=errors)
    return parsed


def _is_e164(phone: str) -> bool:
    return phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16


def to_ingested(
    activity: ActivityIn, tenant_id: str, now: datetime, adapter_version: str
) -> ActivityIngestedV1:
    data = activity.model_dump()
    data["occurred_at"] = activity.occurred_at.astimezone(UTC)
    return ActivityIngestedV1(
        **data,
        tenant_id=tenant_id,
        activity_id=activity_id_for(tenant_id, activity.source, activity.external_id),
        ingested_at=now,
        adapter_version=adapter_version,
    )


def activity_message(event: ActivityIngestedV1, prefix: str) -> OutgoingMessage:
    envelope = Envelope(
        id=f"{event.activity_id}:{event.revision}",
        source=f"/ingest/{event.source}",
        type=ACTIVITY_INGESTED.event_type,
        subject=str(event.activity_id),
        tenant=event.tenant_id,
    )
    return OutgoingMessage(
        topic=ACTIVITY_INGESTED.physical(prefix),
        key=str(event.activity_id).encode(),
        value=encode_body(event),
        envelope=envelope,
    )


async def publish_activities(
    publisher: KafkaPublisher, events: Sequence[ActivityIngestedV1], prefix: str, source: str
) -> Accepted:
    """Publish and wait for the broker's acknowledgement of every event."""
    await publisher.publish([activity_message(e, prefix) for e in events])
    INGEST_EVENTS.labels(source, "accepted").inc(len(events))
    return Accepted(tuple(str(e.activity_id) for e in events))


def parse_crm_sync(body: bytes) -> CrmSyncIn:
    document = _json(body)
    try:
        return CrmSyncIn.model_validate(document)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise Problem(
            422,
            "Invalid CRM entities",
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:20]),
            errors=errors,
        ) from None


def crm_messages(sync: CrmSyncIn, tenant_id: str, prefix: str) -> list[OutgoingMessage]:
    messages = []
    for entity in sync.entities:
        event = CrmEntityChangedV1(tenant_id=tenant_id, source=sync.source, entity=entity)
        key = f"{tenant_id}:{entity.entity_type}:{entity.id}"
        messages.append(
            OutgoingMessage(
                topic=CRM_ENTITY_CHANGED.physical(prefix),
                key=key.encode(),
                value=encode_body(event),
                envelope=Envelope(
                    id=f"{key}:{entity.updated_at.isoformat()}",
                    source=f"/ingest/crm/{sync.source}",
                    type=CRM_ENTITY_CHANGED.event_type,
                    subject=key,
                    tenant=tenant_id,
                ),
            )
        )
    return messages
