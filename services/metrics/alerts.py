"""Publishes ``insight-changed`` from the refresher's outbox, and delivers it to outbound webhooks.

A background task of the metrics process next to the refresher. Each tick it locks a batch
of unpublished changes (``FOR UPDATE SKIP LOCKED``: two processes never send the same
batch at once), publishes them in ``change_id`` order, waits for every broker ack and only
then stamps ``published_at`` in the same transaction. A failure rolls the stamp back, so the
batch is sent again on the next tick: delivery is at least once, ``change_id`` and the
envelope id deduplicate.

Each published change is queued for every webhook of its tenant (``alert_deliveries``, in the
stamping transaction), as is each manager's weekly digest when the refresher stores it. The deliverer claims due deliveries with a lease, POSTs them signed the
Standard Webhooks way (or as a Slack message), and records the outcome: delivered on 2xx, else
retried with exponential backoff, and given up after ``max_attempts`` (counted in
``spm_alert_deliveries_total{outcome="gave_up"}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.alerts import InsightChange, InsightChangedV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.topics import INSIGHT_CHANGED
from services.metrics.domain.alerts import retry_delay, sign, slack_body, slack_digest, standard_body
from services.metrics.telemetry import ALERT_DELIVERIES, INSIGHT_CHANGES

log = logging.getLogger(__name__)


def _change_of(row: Any) -> InsightChangedV1:
    """The event of an ``insight_changes`` row."""
    return InsightChangedV1(
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


def _message_id(row: Any) -> str:
    """One id per change, the same on every retry and in the Kafka envelope."""
    return f"{row.tenant_id}:insight-change:{row.change_id}"


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
            event = _change_of(row)
            envelope = Envelope(
                id=_message_id(row),
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
        ids = [row.change_id for row in rows]
        await conn.execute(
            text("UPDATE insight_changes SET published_at = now() WHERE change_id = ANY(:ids)"), {"ids": ids}
        )
        await conn.execute(
            text(
                "INSERT INTO alert_deliveries (tenant_id, webhook_id, change_id) "
                "SELECT c.tenant_id, w.webhook_id, c.change_id FROM insight_changes c "
                "JOIN alert_webhooks w ON w.tenant_id = c.tenant_id WHERE c.change_id = ANY(:ids) "
                "ON CONFLICT DO NOTHING"
            ),
            {"ids": ids},
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


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=1)
    timeout_seconds: float = 5.0
    batch: int = 50
    #: A claimed delivery is not claimed again before this, should the process die mid-send.
    lease: timedelta = timedelta(minutes=2)


async def _claim(engine: AsyncEngine, policy: DeliveryPolicy) -> list[Any]:
    async with engine.begin() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        # Tenants take turns: each one's oldest due, then each one's second...
                        "WITH turns AS (SELECT delivery_id, next_attempt_at, row_number() OVER ("
                        "  PARTITION BY tenant_id ORDER BY next_attempt_at, delivery_id) AS turn "
                        "  FROM alert_deliveries WHERE delivered_at IS NULL AND gave_up_at IS NULL "
                        "  AND next_attempt_at <= now()), "
                        "due AS (SELECT d.delivery_id FROM alert_deliveries d JOIN turns t USING (delivery_id) "
                        "  WHERE d.delivered_at IS NULL AND d.gave_up_at IS NULL AND d.next_attempt_at <= now() "
                        "  ORDER BY t.turn, t.next_attempt_at, d.delivery_id LIMIT :n FOR UPDATE OF d SKIP LOCKED), "
                        "claimed AS (UPDATE alert_deliveries d SET next_attempt_at = now() + CAST(:lease AS interval) "
                        "  FROM due WHERE d.delivery_id = due.delivery_id RETURNING d.*) "
                        "SELECT claimed.delivery_id, claimed.webhook_id, claimed.attempts, w.url, w.format, w.secret, "
                        "  claimed.tenant_id, claimed.change_id, c.change, c.kind, c.subject_id, c.team_id, "
                        "  c.period_start, c.reasons, c.details, c.changed_at, claimed.digest_manager_id, "
                        "  claimed.digest_week, g.digest "
                        "FROM claimed JOIN alert_webhooks w ON w.tenant_id = claimed.tenant_id "
                        "  AND w.webhook_id = claimed.webhook_id "
                        "LEFT JOIN insight_changes c ON c.change_id = claimed.change_id "
                        "LEFT JOIN manager_digests g ON g.tenant_id = claimed.tenant_id "
                        "  AND g.manager_id = claimed.digest_manager_id AND g.week_start = claimed.digest_week "
                        "ORDER BY claimed.delivery_id"
                    ),
                    {"n": policy.batch, "lease": policy.lease},
                )
            ).all()
        )


async def _send(client: httpx.AsyncClient, row: Any, policy: DeliveryPolicy) -> str | None:
    """POST one delivery; None when the receiver took it (2xx), else what went wrong."""
    now = datetime.now(UTC)
    if row.change_id is None:
        message_id = f"{row.tenant_id}:digest:{row.digest_manager_id}:{row.digest_week.isoformat()}"
        slack, standard = slack_digest(row.digest), standard_body("digest.weekly", row.digest, now)
    else:
        change = _change_of(row).model_dump(mode="json")
        message_id, slack, standard = (
            _message_id(row),
            slack_body(change),
            standard_body("insight.changed", change, now),
        )
    if row.format == "slack":
        body = orjson.dumps(slack)
        headers = {"content-type": "application/json"}
    else:
        body = orjson.dumps(standard)
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(row.secret, message_id, timestamp, body),
        }
    try:
        response = await client.post(row.url, content=body, headers=headers, timeout=policy.timeout_seconds)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


async def _send_in_order(
    client: httpx.AsyncClient, rows: list[Any], policy: DeliveryPolicy
) -> list[tuple[Any, str | None]]:
    """Send one webhook's deliveries one after another, in the order given; each with its outcome."""
    return [(row, await _send(client, row, policy)) for row in rows]


async def deliver_alerts(
    engine: AsyncEngine, client: httpx.AsyncClient, policy: DeliveryPolicy
) -> dict[str, int]:
    """Deliver the due alerts once; returns how many were delivered, failed (to retry) and given up.

    Up to ``policy.batch`` due deliveries, the tenants taking turns, are sent at once across
    webhooks, one after another (oldest first) to each webhook: a receiver that never answers costs
    its own deliveries their timeout, not every delivery queued after them, and a webhook gets a
    risk raised then cleared in one tick in that order.
    """
    outcomes = {"delivered": 0, "failed": 0, "gave_up": 0}
    by_webhook: dict[tuple[str, str], list[Any]] = {}
    for claimed in await _claim(engine, policy):  # oldest first
        by_webhook.setdefault((claimed.tenant_id, claimed.webhook_id), []).append(claimed)
    sent = await asyncio.gather(*(_send_in_order(client, rows, policy) for rows in by_webhook.values()))
    for row, error in (pair for results in sent for pair in results):
        attempts = row.attempts + 1
        if error is None:
            outcome, sql = "delivered", "delivered_at = now(), last_error = NULL"
        elif attempts >= policy.max_attempts:
            outcome, sql = "gave_up", "gave_up_at = now(), last_error = :error"
        else:
            outcome, sql = "failed", "next_attempt_at = now() + CAST(:delay AS interval), last_error = :error"
        async with engine.begin() as conn:
            await conn.execute(
                text(f"UPDATE alert_deliveries SET attempts = :attempts, {sql} WHERE delivery_id = :id"),
                {
                    "attempts": attempts,
                    "error": error,
                    "delay": retry_delay(attempts, policy.backoff_base, policy.backoff_cap),
                    "id": row.delivery_id,
                },
            )
        ALERT_DELIVERIES.labels(outcome).inc()
        outcomes[outcome] += 1
        if outcome == "gave_up":
            log.warning("alert webhook given up", extra={"tenant_id": row.tenant_id, "error": error})
    return outcomes


class AlertDeliverer:
    """Runs :func:`deliver_alerts` every ``interval_seconds`` until stopped."""

    def __init__(
        self, engine: AsyncEngine, client: httpx.AsyncClient, policy: DeliveryPolicy, interval_seconds: float
    ) -> None:
        self._engine = engine
        self._client = client
        self._policy = policy
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> dict[str, int]:
        try:
            return await deliver_alerts(self._engine, self._client, self._policy)
        except Exception:
            log.exception("delivering alerts failed; retried next tick")
            return {}

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
