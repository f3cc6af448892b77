"""The topic registry: every topic the system reads or writes, declared as data in one place.

Logical names are kebab-case past-tense facts; each has a ``-dlq`` twin. The physical
name is the logical name behind ``KAFKA_TOPIC_PREFIX``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from libs.common.contracts.activities import ActivityDeletedV1, ActivityIngestedV1
from libs.common.contracts.activities_fast import decode_ingested
from libs.common.contracts.alerts import InsightChangedV1
from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.contracts.attribution_fast import decode_attributed
from libs.common.contracts.commands import AttributionOverriddenV1, WebhookReceivedV1
from libs.common.contracts.crm import CrmEntityChangedV1
from libs.common.contracts.envelope import InvalidMessage, decode_body
from libs.common.contracts.tenant_settings import SettingsChangedV1


@dataclass(frozen=True, slots=True)
class EventVariant:
    """Another event type a topic carries, under the topic's key (so that it keeps its place in
    the order of the events it follows): its own name, CloudEvents type and payload model."""

    name: str
    event_type: str
    payload: type[BaseModel]
    description: str


#: Dead letters are kept longer than most source topics: an operator needs time to inspect and
#: replay them (docs/operations.md, "What is stored where": every ``*-dlq`` 30 days).
DLQ_RETENTION_DAYS = 30


@dataclass(frozen=True, slots=True)
class Topic:
    """A logical topic, its payload model and CloudEvents type, and how it is keyed."""

    name: str
    event_type: str
    payload: type[BaseModel]
    key: str
    description: str
    retention_days: int = 7
    has_dlq: bool = True
    #: How a consumer decodes a body when not with ``payload``'s own decoder: one that returns
    #: ``payload`` or an equal faster form, and refuses exactly what ``payload`` refuses.
    decoder: Callable[[bytes | None], Any] | None = None
    #: Other event types on this topic; a consumer of the topic receives them too.
    variants: tuple[EventVariant, ...] = ()

    def decode(self, body: bytes | None) -> Any:
        """The payload of a body; anything undecodable or invalid is an ``InvalidMessage``."""
        if self.decoder is not None:
            return self.decoder(body)
        return decode_body(self.payload, body)

    def decode_as(self, event_type: str, body: bytes | None) -> Any:
        """The payload of a body of ``event_type`` (the topic's own or a variant's); any other
        type, or a body its model refuses, is an ``InvalidMessage``."""
        if event_type == self.event_type:
            return self.decode(body)
        for variant in self.variants:
            if variant.event_type == event_type:
                return decode_body(variant.payload, body)
        raise InvalidMessage(f"unexpected event type {event_type!r} on {self.name}")

    @property
    def dlq(self) -> str:
        return f"{self.name}-dlq"

    def physical(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def physical_dlq(self, prefix: str) -> str:
        return f"{prefix}{self.dlq}"


WEBHOOK_RECEIVED = Topic(
    name="webhook-received",
    event_type="io.spm.webhook.received.v1",
    payload=WebhookReceivedV1,
    key="tenant_id:source",
    description="Every accepted raw webhook payload with its adapter version, for re-normalisation.",
    retention_days=30,
    has_dlq=False,
)
ACTIVITY_DELETED = EventVariant(
    name="activity-deleted",
    event_type="io.spm.activity.deleted.v1",
    payload=ActivityDeletedV1,
    description="The source deleted an activity; attribution retracts it (on activity-ingested, same key).",
)
ACTIVITY_INGESTED = Topic(
    name="activity-ingested",
    event_type="io.spm.activity.ingested.v1",
    payload=ActivityIngestedV1,
    key="activity_id",
    description="Normalised, privacy-filtered canonical activities from ingest.",
    # msgspec structs for the bodies it takes as-is (attribution's hot path).
    decoder=decode_ingested,
    variants=(ACTIVITY_DELETED,),
)
CRM_ENTITY_CHANGED = Topic(
    name="crm-entity-changed",
    event_type="io.spm.crm.entity.changed.v1",
    payload=CrmEntityChangedV1,
    key="tenant_id:entity_type:id",
    description="CRM reference entities (reps, teams, memberships, accounts, contacts, deals).",
    retention_days=30,
)
ATTRIBUTION_OVERRIDDEN = Topic(
    name="attribution-overridden",
    event_type="io.spm.attribution.overridden.v1",
    payload=AttributionOverriddenV1,
    key="activity_id",
    description="An admin pinned an activity's deal or rep; attribution issues a sticky new version.",
)
ACTIVITY_ATTRIBUTED = Topic(
    name="activity-attributed",
    event_type="io.spm.activity.attributed.v1",
    payload=ActivityAttributedV1,
    key="tenant_id:rep_id",
    description="Versioned attributions; keyed by rep so one rep's activities stay ordered.",
    # msgspec structs for the bodies it takes as-is (the metrics consumer's hot path).
    decoder=decode_attributed,
)
SETTINGS_CHANGED = Topic(
    name="settings-changed",
    event_type="io.spm.settings.changed.v1",
    payload=SettingsChangedV1,
    key="tenant_id",
    description="A tenant's settings got a new version; every process drops its cached copy.",
    # Read by every process without a consumer group, from the end: no dead letters.
    has_dlq=False,
)

INSIGHT_CHANGED = Topic(
    name="insight-changed",
    event_type="io.spm.insight.changed.v1",
    payload=InsightChangedV1,
    key="tenant_id:subject_id",
    description="An insight appeared or cleared; for alerting integrations (no consumer in the system).",
    has_dlq=False,
)

REGISTRY: tuple[Topic, ...] = (
    WEBHOOK_RECEIVED,
    ACTIVITY_INGESTED,
    CRM_ENTITY_CHANGED,
    ATTRIBUTION_OVERRIDDEN,
    ACTIVITY_ATTRIBUTED,
    SETTINGS_CHANGED,
    INSIGHT_CHANGED,
)


def physical_names(prefix: str) -> list[str]:
    """Every physical topic, DLQs included."""
    names: list[str] = []
    for topic in REGISTRY:
        names.append(topic.physical(prefix))
        if topic.has_dlq:
            names.append(topic.physical_dlq(prefix))
    return names
