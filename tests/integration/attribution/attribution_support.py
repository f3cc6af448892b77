"""Builders, a recording producer and readers for the attribution integration tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityIngestedV1, activity_id_for
from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.contracts.commands import AttributionOverriddenV1
from libs.common.contracts.crm import CrmEntity, CrmEntityChangedV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.kafka.clients import make_producer
from libs.common.kafka.runner import ConsumedMessage
from libs.common.settings import KafkaSettings
from libs.common.topics import ACTIVITY_INGESTED, ATTRIBUTION_OVERRIDDEN, CRM_ENTITY_CHANGED
from services.attribution.handlers import AttributionDeps, handle_batch
from services.attribution.reattribution import ReattributionReport, reattribute
from tests.integration.pipeline_support import drained

TENANT = "acme"
INGESTED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_ENTITY = TypeAdapter[CrmEntity](CrmEntity)


@dataclass
class Sent:
    topic: str
    key: str
    event: ActivityAttributedV1
    headers: dict[str, bytes]


@dataclass
class RecordedBatch:
    """What ``AIOKafkaProducer.create_batch`` gives: messages appended, never full."""

    messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    def append(
        self, *, key: bytes, value: bytes, timestamp: float | None, headers: list[tuple[str, bytes]]
    ) -> bool:
        self.messages.append((key, value, headers))
        return True


@dataclass
class RecordingProducer:
    """Stands in for AIOKafkaProducer (``send``, and the batch calls of ``send_in_batches`` on one
    partition, so the order published is the order given): records what would be published,
    acks at once."""

    sent: list[Sent] = field(default_factory=list)

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        self.sent.append(
            Sent(topic, key.decode(), ActivityAttributedV1.model_validate_json(value), dict(headers))
        )
        return _acked()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def _partition(self, topic: str, partition: int | None, *args: Any) -> int:
        return 0

    def create_batch(self) -> RecordedBatch:
        return RecordedBatch()

    async def send_batch(self, batch: RecordedBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        for key, value, headers in batch.messages:
            await self.send(topic, value, key, headers)
        return _acked()

    def take(self) -> list[Sent]:
        taken, self.sent = self.sent, []
        return taken


def _acked() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def deps_for(engine: AsyncEngine, producer: RecordingProducer) -> AttributionDeps:
    return AttributionDeps(engine, cast(AIOKafkaProducer, producer), "t.")


def entity(**fields: Any) -> CrmEntity:
    fields.setdefault("updated_at", "2026-11-01T00:00:00Z")
    return _ENTITY.validate_python(fields)


def activity(external_id: str, **fields: Any) -> ActivityIngestedV1:
    fields.setdefault("source", "mail")
    fields.setdefault("kind", "email")
    fields.setdefault("direction", "outbound")
    fields.setdefault("outcome", "sent" if fields["kind"] == "email" else "connected")
    return ActivityIngestedV1.model_validate(
        {
            "tenant_id": TENANT,
            "activity_id": str(activity_id_for(TENANT, fields["source"], external_id)),
            "external_id": external_id,
            "ingested_at": INGESTED_AT.isoformat(),
            **fields,
        }
    )


def email(
    external_id: str, sender: str, *recipients: str, at: str, thread_id: str | None = None, **fields: Any
) -> ActivityIngestedV1:
    participants = [{"email": sender, "role": "from"}] + [{"email": r, "role": "to"} for r in recipients]
    return activity(external_id, occurred_at=at, participants=participants, thread_id=thread_id, **fields)


def override(activity_id: uuid.UUID, **fields: Any) -> AttributionOverriddenV1:
    return AttributionOverriddenV1(
        tenant_id=TENANT,
        activity_id=activity_id,
        set_by=fields.pop("set_by", "manager@seller.example"),
        set_at=fields.pop("set_at", datetime(2026, 11, 21, tzinfo=UTC)),
        **fields,
    )


def messages(
    *payloads: CrmEntity | ActivityIngestedV1 | AttributionOverriddenV1, source: str | Sequence[str] = "test"
) -> list[ConsumedMessage[Any]]:
    """Consumer messages as the runner hands them over (CRM entities wrapped in their event, from
    ``source``: one for all, or one per payload)."""
    sources = [source] * len(payloads) if isinstance(source, str) else list(source)
    out: list[ConsumedMessage[Any]] = []
    for offset, payload in enumerate(payloads):
        body: ActivityIngestedV1 | AttributionOverriddenV1 | CrmEntityChangedV1
        if isinstance(payload, ActivityIngestedV1):
            topic, body, subject = ACTIVITY_INGESTED, payload, str(payload.activity_id)
        elif isinstance(payload, AttributionOverriddenV1):
            topic, body, subject = ATTRIBUTION_OVERRIDDEN, payload, str(payload.activity_id)
        else:
            topic, subject = CRM_ENTITY_CHANGED, payload.id
            body = CrmEntityChangedV1(tenant_id=TENANT, source=sources[offset], entity=payload)
        envelope = Envelope(
            id=f"m-{offset}", source="/tests", type=topic.event_type, subject=subject, tenant=TENANT
        )
        # Decoded from its bytes by the topic's decoder, as the runner does (msgspec structs for
        # the activities the fast path takes).
        decoded = topic.decode(encode_body(body))
        out.append(ConsumedMessage(topic, 0, offset, None, envelope, decoded))
    return out


async def deliver(
    engine: AsyncEngine,
    producer: RecordingProducer,
    *payloads: CrmEntity | ActivityIngestedV1 | AttributionOverriddenV1,
    source: str | Sequence[str] = "test",
) -> list[Sent]:
    """One consumer batch through ``handle_batch``; returns what it published."""
    await handle_batch(messages(*payloads, source=source), deps_for(engine, producer))
    return producer.take()


async def create_tenant(engine: AsyncEngine, settings: dict[str, Any] | None = None) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (tenant_id, name, settings) VALUES (:t, :t, CAST(:s AS jsonb))"),
            {"t": TENANT, "s": orjson.dumps(settings or {}).decode()},
        )


async def set_tenant_settings(engine: AsyncEngine, settings: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET settings = CAST(:s AS jsonb) WHERE tenant_id = :t"),
            {"t": TENANT, "s": orjson.dumps(settings).decode()},
        )


async def rows(engine: AsyncEngine, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row ``sql`` selects (with its bound ``params``), as tuples."""
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(text(sql), params)]


async def contributions(engine: AsyncEngine, tenant_id: str, columns: str) -> list[tuple[Any, ...]]:
    """What metrics holds of each activity of the tenant: (external id, ``columns`` of its
    ``metric_contributions`` row ``c``), by external id."""
    return await rows(
        engine,
        f"SELECT a.external_id, {columns} FROM metric_contributions c "
        "JOIN activities a USING (tenant_id, activity_id) WHERE c.tenant_id = :t ORDER BY a.external_id",
        {"t": tenant_id},
    )


async def reattribute_settled(
    kafka: KafkaSettings, engine: AsyncEngine, tenant_id: str, since: datetime, until: datetime
) -> ReattributionReport:
    """``spm reattribute`` of ``tenant_id`` over [since, until), published to the real broker and
    settled (every new version decided by attribution and counted by metrics)."""
    producer = make_producer(kafka, "reattribute-test")
    await producer.start()
    try:
        report = await reattribute(engine, producer, kafka.topic_prefix, tenant_id, since, until)
    finally:
        await producer.stop()
    await drained(kafka)
    return report


async def plan(engine: AsyncEngine, sql: str) -> str:
    """PostgreSQL's plan for ``sql`` (an ``EXPLAIN``) with sequential scans off: whether an index
    can serve it."""
    async with engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))
        return "\n".join(r[0] for r in await conn.execute(text(sql)))


@dataclass(frozen=True)
class Current:
    version: int
    status: str
    rep_id: str | None
    team_id: str | None
    account_id: str | None
    deal_id: str | None
    secondary_deal_ids: tuple[str, ...]
    is_override: bool
    parked: bool
    rule_path: str


async def current(engine: AsyncEngine, activity_id: uuid.UUID) -> Current:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT * FROM attributions WHERE tenant_id = :t AND activity_id = :a"),
                {"t": TENANT, "a": activity_id},
            )
        ).one()
    return Current(
        row.version,
        row.status,
        row.rep_id,
        row.team_id,
        row.account_id,
        row.deal_id,
        tuple(row.secondary_deal_ids),
        row.is_override,
        row.parked_until is not None,
        row.explanation["rule_path"],
    )


async def history(engine: AsyncEngine, activity_id: uuid.UUID) -> list[tuple[int, str, str | None, bool]]:
    """(version, status, deal, is_override) of every version, oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT version, status, deal_id, is_override FROM attribution_history "
                "WHERE tenant_id = :t AND activity_id = :a ORDER BY version"
            ),
            {"t": TENANT, "a": activity_id},
        )
        return [(r.version, r.status, r.deal_id, r.is_override) for r in rows]


def baseline() -> list[CrmEntity]:
    """One rep with two emails and two phones, two dated teams, one account, two contacts, two deals."""
    return [
        entity(entity_type="team", id="team-a"),
        entity(entity_type="team", id="team-b"),
        entity(
            entity_type="rep",
            id="rep-1",
            emails=["ana@seller.example", "ana.s@seller.example"],
            phones=["+14155550001", "+14155550002"],
        ),
        entity(
            entity_type="team_membership",
            id="m1",
            rep_id="rep-1",
            team_id="team-a",
            valid_from="2026-01-01",
            valid_to="2026-07-01",
        ),
        entity(
            entity_type="team_membership", id="m2", rep_id="rep-1", team_id="team-b", valid_from="2026-07-01"
        ),
        entity(entity_type="account", id="acc-1", domains=["buyer.example"]),
        entity(
            entity_type="contact",
            id="con-1",
            emails=["bo@buyer.example"],
            phones=["+12125550100"],
            account_id="acc-1",
        ),
        entity(entity_type="contact", id="con-2", emails=["cy@buyer.example"], account_id="acc-1"),
        entity(
            entity_type="deal",
            id="deal-1",
            account_id="acc-1",
            owner_rep_id="rep-1",
            created_at="2026-10-01T00:00:00Z",
            contacts=[{"contact_id": "con-1", "role": "champion"}],
        ),
        entity(
            entity_type="deal",
            id="deal-2",
            account_id="acc-1",
            owner_rep_id="rep-1",
            created_at="2026-10-05T00:00:00Z",
            contacts=[{"contact_id": "con-2", "role": "buyer"}],
        ),
    ]


def summary(sent: Sequence[Sent]) -> list[tuple[str, int, str, str | None]]:
    """(key, version, status, deal) of each published event, in publish order."""
    return [(s.key, s.event.version, s.event.status.value, s.event.deal_id) for s in sent]
