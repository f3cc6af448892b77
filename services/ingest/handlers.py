"""Ingest use cases: validate, normalise, filter, and publish with acknowledgement."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.contracts.activities import ActivityIn, ActivityIngestedV1, activity_id_for
from libs.common.contracts.commands import WebhookReceivedV1
from libs.common.contracts.crm import CrmEntity, CrmEntityChangedV1, CrmSyncIn
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.kafka.publisher import OutgoingMessage
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED, WEBHOOK_RECEIVED
from libs.common.web import Problem, field_errors
from services.ingest.adapters.repository import (
    MeetingSighting,
    TenantContext,
    canonical_meetings,
    record_seen,
)
from services.ingest.domain.meetings import meeting_keys
from services.ingest.domain.privacy import apply_privacy
from services.ingest.settings import IngestOptions
from services.ingest.telemetry import INGEST_EVENTS, INGEST_EXCLUSIONS


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
    activity: ActivityIn,
    tenant_id: str,
    now: datetime,
    adapter_version: str,
    *,
    automated: bool = False,
    activity_id: uuid.UUID | None = None,
) -> ActivityIngestedV1:
    # ``activity`` is already validated: constructing skips a second validation of every field,
    # the largest cost of a 1,000-activity batch after parsing.
    fields = {name: getattr(activity, name) for name in ActivityIn.model_fields}
    fields["occurred_at"] = activity.occurred_at.astimezone(UTC)
    return ActivityIngestedV1.model_construct(
        **fields,
        tenant_id=tenant_id,
        activity_id=activity_id or activity_id_for(tenant_id, activity.source, activity.external_id),
        ingested_at=now,
        automated=automated,
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
        # The same JSON as ``encode_body`` in one pass of pydantic's serializer.
        value=event.model_dump_json().encode(),
        envelope=envelope,
    )


@dataclass(slots=True)
class PreparedActivities:
    """What one request turns into once privacy, meeting and duplicate rules ran."""

    #: Events to publish (new activities, new revisions, and other sources' sightings of a meeting).
    events: list[ActivityIngestedV1] = field(default_factory=list)
    #: Activities not seen before (the ``accepted`` outcome in Prometheus).
    new: int = 0
    #: Redeliveries of an (activity, revision) already published, and meetings already seen elsewhere.
    duplicates: int = 0
    automated: int = 0
    exclusions: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        """Everything ingest answers for: new activities and duplicates (all but the excluded)."""
        return self.new + self.duplicates

    @property
    def excluded(self) -> int:
        return sum(self.exclusions.values())

    def count(self, source: str) -> None:
        """Record the outcome in Prometheus once the broker acknowledged."""
        INGEST_EVENTS.labels(source, "accepted").inc(self.new)
        INGEST_EVENTS.labels(source, "duplicate").inc(self.duplicates)
        INGEST_EVENTS.labels(source, "excluded").inc(self.excluded)
        for reason, count in self.exclusions.items():
            INGEST_EXCLUSIONS.labels(source, reason).inc(count)


async def prepare_activities(
    conn: AsyncConnection,
    context: TenantContext,
    activities: Sequence[ActivityIn],
    now: datetime,
    adapter_version: str,
) -> PreparedActivities:
    """Privacy first (nothing excluded goes further), then cross-source meetings, then redeliveries.

    The bookkeeping rows are written on ``conn`` and only committed after the publish was
    acknowledged, so a refused publish leaves nothing marked as seen.
    """
    prepared = PreparedActivities()
    kept: list[tuple[ActivityIn, bool]] = []
    for activity in activities:
        verdict = apply_privacy(activity, context.privacy)
        if verdict.reason is not None:
            prepared.exclusions[verdict.reason.value] += 1
        else:
            kept.append((verdict.activity, verdict.automated))
    own_ids = [activity_id_for(context.tenant_id, a.source, a.external_id) for a, _ in kept]
    sightings = [
        MeetingSighting(own_id, a.source, keys)
        for (a, _), own_id in zip(kept, own_ids, strict=True)
        if (keys := meeting_keys(a, context.webhook.internal_domains))
    ]
    canonical = await canonical_meetings(conn, context.tenant_id, sightings) if sightings else {}
    events = [
        to_ingested(
            activity,
            context.tenant_id,
            now,
            adapter_version,
            automated=automated,
            activity_id=canonical.get(own_id, own_id),
        )
        for (activity, automated), own_id in zip(kept, own_ids, strict=True)
    ]
    fresh = await record_seen(conn, context.tenant_id, [(e.activity_id, e.revision) for e in events])
    for event, own_id in zip(events, own_ids, strict=True):
        if (event.activity_id, event.revision) not in fresh:
            # The same (activity, revision) was acknowledged before: a redelivery, not republished.
            prepared.duplicates += 1
            continue
        fresh.discard((event.activity_id, event.revision))
        prepared.events.append(event)
        prepared.automated += event.automated
        if event.activity_id != own_id:
            prepared.duplicates += 1
        else:
            prepared.new += 1
    return prepared


def raw_webhook_message(
    tenant_id: str,
    source: str,
    adapter_version: str,
    received_at: datetime,
    headers: Mapping[str, str],
    body: bytes,
    prefix: str,
) -> OutgoingMessage:
    """The delivery as received, for re-normalisation by a later adapter version."""
    kept_headers = {
        k: v
        for k, v in headers.items()
        if k not in SECRET_HEADERS and not k.startswith("x-hubspot-signature")
    }
    event = WebhookReceivedV1(
        tenant_id=tenant_id,
        source=source,
        adapter_version=adapter_version,
        received_at=received_at,
        content_type=headers.get("content-type", ""),
        body=redact_body_secrets(source, body).decode("utf-8", errors="replace"),
        headers=kept_headers,
    )
    key = f"{tenant_id}:{source}"
    return OutgoingMessage(
        topic=WEBHOOK_RECEIVED.physical(prefix),
        key=key.encode(),
        value=encode_body(event),
        envelope=Envelope(
            id=f"{key}:{hashlib.sha256(body).hexdigest()[:32]}",
            source=f"/ingest/webhooks/{source}",
            type=WEBHOOK_RECEIVED.event_type,
            subject=key,
            tenant=tenant_id,
        ),
    )


#: Body fields that carry a shared secret, per source: masked before the raw capture is kept.
SECRET_BODY_FIELDS: dict[str, str] = {"aircall": "token", "microsoft-graph": "clientState"}


def redact_body_secrets(source: str, body: bytes) -> bytes:
    """The body with the source's secret field masked wherever it appears (JSON bodies only)."""
    field = SECRET_BODY_FIELDS.get(source)
    if field is None or field.encode() not in body:
        return body
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body

    def mask(node: object) -> object:
        if isinstance(node, dict):
            return {k: ("***" if k == field else mask(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [mask(item) for item in node]
        return node

    return orjson.dumps(mask(document))


#: Headers that authenticate a delivery or a client: never copied to the raw topic.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        "proxy-authorization",
        "x-api-key",
        "x-twilio-signature",
        "x-zm-signature",
        "calendly-webhook-signature",
        "webhook-signature",
        "x-goog-channel-token",
    }
)


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
    return entity_messages(sync.entities, sync.source, tenant_id, prefix)


def entity_messages(
    entities: Sequence[CrmEntity], source: str, tenant_id: str, prefix: str
) -> list[OutgoingMessage]:
    messages = []
    for entity in entities:
        event = CrmEntityChangedV1(tenant_id=tenant_id, source=source, entity=entity)
        key = f"{tenant_id}:{entity.entity_type}:{entity.id}"
        messages.append(
            OutgoingMessage(
                topic=CRM_ENTITY_CHANGED.physical(prefix),
                key=key.encode(),
                value=encode_body(event),
                envelope=Envelope(
                    id=f"{key}:{entity.updated_at.isoformat()}",
                    source=f"/ingest/crm/{source}",
                    type=CRM_ENTITY_CHANGED.event_type,
                    subject=key,
                    tenant=tenant_id,
                ),
            )
        )
    return messages
