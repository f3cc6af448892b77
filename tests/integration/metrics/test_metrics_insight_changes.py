"""insight-changed: the refresher records appear/clear transitions; the publisher sends them once acked."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import ActivityKind, Direction, Outcome
from libs.common.contracts.alerts import InsightChangedV1
from libs.common.kafka.clients import connection_options, make_producer
from libs.common.settings import KafkaSettings
from libs.common.topics import INSIGHT_CHANGED
from services.metrics.alerts import publish_insight_changes
from services.metrics.refresher import refresh_tenant

from .metrics_support import apply, attributed, create_tenant

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def _deal(engine: AsyncEngine, deal_id: str, created: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_deals (tenant_id, deal_id, owner_rep_id, created_at, updated_at) "
                "VALUES ('acme', :d, 'rep-1', :at, :at)"
            ),
            {"d": deal_id, "at": created},
        )


async def _refresh(engine: AsyncEngine, now: datetime) -> None:
    async with engine.begin() as conn:
        await refresh_tenant(conn, "acme", now)


async def _read(kafka: KafkaSettings, expected: int) -> list[tuple[str, InsightChangedV1]]:
    consumer = AIOKafkaConsumer(
        INSIGHT_CHANGED.physical(kafka.topic_prefix),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **connection_options(kafka),
    )
    await consumer.start()
    out: list[tuple[str, InsightChangedV1]] = []
    try:
        deadline = time.monotonic() + 60
        while len(out) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [
                    ((r.key or b"").decode(), InsightChangedV1.model_validate_json(r.value or b""))
                    for r in records
                ]
        for records in (await consumer.getmany(timeout_ms=1_000)).values():
            out += [("unexpected", InsightChangedV1.model_validate_json(r.value or b"")) for r in records]
    finally:
        await consumer.stop()
    return out


async def test_an_insight_that_appears_and_clears_is_published_once_each_way(
    db_engine: AsyncEngine, kafka_settings: KafkaSettings
) -> None:
    await create_tenant(db_engine)
    await _deal(db_engine, "deal-1", NOW - timedelta(days=30))

    await _refresh(db_engine, NOW)  # untouched for 30 days: stale
    await _refresh(db_engine, NOW + timedelta(minutes=15))  # still stale: no new transition
    await apply(
        db_engine,
        [attributed(activity=1, deal_id="deal-1", occurred_at=NOW, external_contact_ids=("c-1", "c-2"))],
    )
    await apply(
        db_engine,
        [
            attributed(
                activity=2,
                deal_id="deal-1",
                occurred_at=NOW,
                external_contact_ids=("c-1",),
                kind=ActivityKind.EMAIL,
                direction=Direction.INBOUND,
                outcome=Outcome.RECEIVED,
            )
        ],
    )
    await _refresh(db_engine, NOW + timedelta(hours=1))  # worked and answered today: clears

    producer = make_producer(kafka_settings, "insight-changes-test")
    await producer.start()
    try:
        assert await publish_insight_changes(db_engine, producer, kafka_settings.topic_prefix) == 2
        assert await publish_insight_changes(db_engine, producer, kafka_settings.topic_prefix) == 0
    finally:
        await producer.stop()

    published = await _read(kafka_settings, 2)
    assert [(key, e.change.value, e.kind, e.subject_id, e.reasons) for key, e in published] == [
        ("acme:deal-1", "appeared", "stale_deal", "deal-1", ("no_recent_activity", "no_buyer_reply")),
        ("acme:deal-1", "cleared", "stale_deal", "deal-1", ("no_recent_activity", "no_buyer_reply")),
    ]
    first, second = (e for _, e in published)
    assert second.change_id > first.change_id
    assert first.details["days_since_activity"] == 30
    async with db_engine.connect() as conn:
        unpublished = (
            await conn.execute(text("SELECT count(*) FROM insight_changes WHERE published_at IS NULL"))
        ).scalar_one()
    assert unpublished == 0
