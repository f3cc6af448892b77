"""Publishes ``insight-changed`` from the refresher's outbox (``insight_changes``).

A background task of the metrics process next to the refresher. Each tick it locks a batch
of unpublished changes (``FOR UPDATE SKIP LOCKED``: two processes never send the same
batch at once), publishes them in ``change_id`` order, waits for every broker ack and only
then stamps ``published_at`` in the same transaction. A failure rolls the stamp back, so the
batch is sent again on the next tick: delivery is at least once, ``change_id`` and the
envelope id deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.alerts import InsightChange, InsightChangedV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.topics import INSIGHT_CHANGED
from services.metrics.telemetry import INSIGHT_CHANGES

log = logging.getLogger(__name__)


async def publish_insight_changes(
    engine: AsyncEngine, producer: AIOKafkaProducer, prefix: str, limit: int = 500
) -> int:
    """Publish up to ``limit`` unpublished changes; returns how many were published."""
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT change_id, tenant_id, change, kind, subject_id, team_id, period_start, reasons, details, "
                    "changed_at FROM insight_changes WHERE published_at IS NULL ORDER BY change_id "
                    "LIMIT :limit FOR UPDATE SKIP LOCKED"
                ),
                {"limit": limit},
            )
        ).all()
        if not rows:
            return 0
        topic = INSIGHT_CHANGED.physical(prefix)
        futures = []
        for row in rows:
            event = InsightChangedV1(
                tenant_id=row.tenant_id,
                change_id=row.change_id,
                change=InsightChange(row.change),
                kind=row.kind,
                subject_id=row.subject_id,
                team_id=row.team_id,
                period_start=row.period_start,
                reasons=tuple(row.reasons),
                details=dict(row.details),
                changed_at=row.changed_at.astimezone(UTC),
            )
            envelope = Envelope(
                id=f"{row.tenant_id}:insight-change:{row.change_id}",
                source="/metrics",
                type=INSIGHT_CHANGED.event_type,
                subject=row.subject_id,
                tenant=row.tenant_id,
            )
            key = f"{row.tenant_id}:{row.subject_id}".encode()
            futures.append(
                await producer.send(topic, value=encode_body(event), key=key, headers=envelope.to_headers())
            )
        await asyncio.gather(*futures)
        await conn.execute(
            text("UPDATE insight_changes SET published_at = now() WHERE change_id = ANY(:ids)"),
            {"ids": [row.change_id for row in rows]},
        )
    INSIGHT_CHANGES.inc(len(rows))
    return len(rows)


class InsightChangePublisher:
    """Runs :func:`publish_insight_changes` every ``interval_seconds`` until stopped."""

    def __init__(
        self, engine: AsyncEngine, producer: AIOKafkaProducer, prefix: str, interval_seconds: float
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._prefix = prefix
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        try:
            return await publish_insight_changes(self._engine, self._producer, self._prefix)
        except Exception:
            log.exception("publishing insight changes failed; retried next tick")
            return 0

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
