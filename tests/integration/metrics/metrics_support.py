"""Builders and readers shared by the metrics integration tests (real PostgreSQL, optional broker)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.contracts.envelope import Envelope, encode_body
from libs.common.kafka.clients import make_producer
from libs.common.kafka.runner import ConsumedMessage
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenant_settings_store import TenantSettingsCache
from libs.common.testing.stack import fast_consumer
from libs.common.topics import ACTIVITY_ATTRIBUTED
from services.metrics.adapters.rollups import COUNTER_COLUMNS
from services.metrics.app import create_app
from services.metrics.domain.definitions import STORED_LEVELS, MetricCounts, MetricSettings
from services.metrics.domain.reference import Aggregates
from services.metrics.domain.scoring import ScoringModel, weights_by_counter
from services.metrics.handlers import GRAINS, MetricsDeps, handle_batch
from services.metrics.settings import MetricsOptions, MetricsServiceSettings
from tests.unit.metrics.events import attributed as attributed_event

#: (level, entity id, granularity, period start)
Cell = tuple[str, str, str, date]


def attributed(*, tenant_id: str = "acme", activity: int = 1, **fields: Any) -> ActivityAttributedV1:
    """The unit tests' event builder, with activities numbered for readable SQL assertions."""
    return attributed_event(tenant_id=tenant_id, activity_id=uuid.UUID(int=activity), **fields)


def envelope_of(event: ActivityAttributedV1) -> Envelope:
    return Envelope(
        id=f"{event.activity_id}:v{event.version}",
        source="/tests",
        type=ACTIVITY_ATTRIBUTED.event_type,
        subject=str(event.activity_id),
        tenant=event.tenant_id,
    )


def messages_of(events: Sequence[ActivityAttributedV1]) -> list[ConsumedMessage[Any]]:
    return [
        ConsumedMessage(ACTIVITY_ATTRIBUTED, 0, offset, None, envelope_of(event), event)
        for offset, event in enumerate(events)
    ]


async def publish(
    kafka: KafkaSettings, events: Sequence[ActivityAttributedV1], key: bytes | None = None
) -> None:
    """The events on the real broker, in this order, each keyed ``key`` (one partition for all) or,
    when not given, by its tenant and rep."""
    producer = make_producer(kafka, "tests")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                ACTIVITY_ATTRIBUTED.physical(kafka.topic_prefix),
                value=encode_body(event),
                key=key or f"{event.tenant_id}:{event.rep_id}".encode(),
                headers=envelope_of(event).to_headers(),
            )
    finally:
        await producer.stop()


def metrics_app(kafka: KafkaSettings, database: DatabaseSettings, **options: Any) -> FastAPI:
    """The metrics process (consumer, refresher, drainer), its consumer polling fast, with ``options``."""
    return create_app(
        MetricsServiceSettings(
            kafka=kafka, database=database, consumer=fast_consumer(), metrics=MetricsOptions(**options)
        )
    )


def new_deps(engine: AsyncEngine) -> MetricsDeps:
    return MetricsDeps(engine, TenantSettingsCache(engine, ttl_seconds=0.0))


async def apply(
    engine: AsyncEngine, events: Sequence[ActivityAttributedV1], deps: MetricsDeps | None = None
) -> None:
    """One consumer batch, as the runner would hand it over."""
    await handle_batch(messages_of(events), deps or new_deps(engine))


async def create_tenant(
    engine: AsyncEngine, tenant_id: str = "acme", timezone: str = "UTC", fiscal_year_start_month: int = 1
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (tenant_id, timezone, fiscal_year_start_month) VALUES (:t, :z, :f)"),
            {"t": tenant_id, "z": timezone, "f": fiscal_year_start_month},
        )


async def save_scoring_model(engine: AsyncEngine, tenant_id: str, model: ScoringModel) -> None:
    """What the gateway does on PUT: insert a new version."""
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO scoring_models (tenant_id, version, model) VALUES (:t, :v, CAST(:m AS jsonb))"),
            {"t": tenant_id, "v": model.version, "m": orjson.dumps(model.model_dump(mode="json")).decode()},
        )


async def rollup_rows(engine: AsyncEngine, tenant_id: str = "acme") -> dict[Cell, dict[str, float]]:
    """Rollup rows with a non-zero counter: cell -> its non-zero columns, ``activities`` and ``score`` included.

    A row whose counters are all zero (a re-attribution emptied it) is left out, as the
    reference aggregation leaves out empty cells.
    """
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                f"SELECT level, entity_id, granularity, period_start, {', '.join(COUNTER_COLUMNS)}, score "
                "FROM metric_rollups WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        rows = {}
        for row in result.mappings():
            if any(row[c] for c in COUNTER_COLUMNS):
                cell = (row["level"], row["entity_id"], row["granularity"], row["period_start"])
                rows[cell] = {c: row[c] for c in (*COUNTER_COLUMNS, "score") if row[c]}
        return rows


async def contribution_rows(engine: AsyncEngine, tenant_id: str = "acme") -> dict[int, dict[str, Any]]:
    """activity number -> its stored contribution (version, rep, counters and score)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                f"SELECT activity_id, version, rep_id, {', '.join(COUNTER_COLUMNS)}, score "
                "FROM metric_contributions WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        return {row["activity_id"].int: dict(row) for row in result.mappings()}


def weighted(values: dict[str, Any], model: ScoringModel) -> float:
    """sum(weight * column), the score a row must hold under ``model``."""
    weights = weights_by_counter(model)
    return float(sum(weight * values.get(counter.value, 0) for counter, weight in weights.items()))


def expected_rows(
    cells: Aggregates, settings: MetricSettings, model: ScoringModel
) -> dict[Cell, dict[str, float]]:
    """The rollup rows (counters and score, no ``activities``) implied at every grain by day cells
    of the stored levels."""
    rows: dict[Cell, dict[str, float]] = {}
    for key, counts in cells.items():
        if key.level not in STORED_LEVELS:
            continue
        for grain in GRAINS:
            start = settings.calendar.period_of(key.day, grain).start
            row = rows.setdefault((key.level.value, key.entity_id, grain.value, start), {})
            for column, amount in counts.as_dict().items():
                if amount:
                    row[column] = row.get(column, 0) + amount
    for row in rows.values():
        score = weighted(row, model)
        if score:
            row["score"] = score
    return rows


def without_activities(rows: dict[Cell, dict[str, float]]) -> dict[Cell, dict[str, float]]:
    trimmed = {cell: {c: v for c, v in row.items() if c != "activities"} for cell, row in rows.items()}
    return {cell: row for cell, row in trimmed.items() if set(row) - {"score"}}


def counts_of(row: dict[str, float]) -> MetricCounts:
    return MetricCounts(**{c: int(v) for c, v in row.items() if c not in ("activities", "score")})


async def deferred_versions(engine: AsyncEngine) -> dict[str, int]:
    """tenant -> versions the consumer set aside (``metric_deferred_events``), for tenants with any."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tenant_id, count(*) FROM metric_deferred_events GROUP BY tenant_id")
        )
        return {tenant_id: count for tenant_id, count in rows}
