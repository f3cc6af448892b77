"""The array codecs (``libs.common.db.array_codecs``) write exactly the rows asyncpg's encoding wrote.

The same batches go through attribution's and metrics' ``handle_batch`` on two databases, one
through ``make_engine`` as deployed and one with the codecs taken off its connections; every
row the batches write is compared, column by column.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.attribution import ActivityAttributedV1
from libs.common.db import engine as db_engine_module
from libs.common.db.array_codecs import Utf8Texts
from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings
from libs.common.testing.engines import Engines

from .attribution.attribution_support import (
    RecordingProducer,
    baseline,
    create_tenant,
    deliver,
    email,
    entity,
    override,
)
from .metrics.metrics_support import apply

#: Every table the two services' batches write, in a stable order.
TABLES = {
    "activities": "tenant_id, activity_id",
    "attributions": "tenant_id, activity_id",
    "attribution_superseded": "tenant_id, activity_id, version",
    "metric_contributions": "tenant_id, activity_id",
    "metric_rollups": "tenant_id, level, granularity, period_start, entity_id",
    "metric_deal_engagement_changes": "tenant_id, deal_id",
}


def _as_strings(value: Any) -> Any:
    if type(value) is Utf8Texts:
        return [None if t is None else t.decode() for t in value]
    return value


def _texts_as_strings(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    if isinstance(parameters, dict):
        return statement, {k: _as_strings(v) for k, v in parameters.items()}
    return statement, type(parameters)(_as_strings(v) for v in parameters)


@pytest.fixture
async def two_engines(engines: Engines) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    names = [engines.new_database(), engines.new_database()]
    made = [make_engine(DatabaseSettings(url=engines.postgres.url(n), pool_size=2), "tests") for n in names]
    # The second as before the codecs: asyncpg encodes every array itself, the texts sent as
    # UTF-8 (``Utf8Texts``) given to it as the strings they were before.
    event.remove(made[1].sync_engine, "connect", db_engine_module._on_connect)
    event.listen(made[1].sync_engine, "before_cursor_execute", _texts_as_strings, retval=True)
    try:
        yield made[0], made[1]
    finally:
        for e in made:
            await e.dispose()
        for n in names:
            engines.drop_database(n)


async def _run(engine: AsyncEngine) -> list[ActivityAttributedV1]:
    producer = RecordingProducer()
    await create_tenant(engine)
    crm = baseline()
    first = [
        email("e-1", "ana@seller.example", "bo@buyer.example", at="2026-11-02T10:00:00Z", revision=1),
        email(
            "e-2", "ana.s@seller.example", "cy@buyer.example", "bo@buyer.example", at="2026-11-02T11:00:00Z"
        ),
        email("e-3", "shared@helpdesk.example", "nobody@unknown.example", at="2026-11-03T12:00:00Z"),
        email(
            "e-4", "bo@buyer.example", "ana@seller.example", at="2026-11-04T09:00:00Z", direction="inbound"
        ),
    ]
    later = [
        # A newer revision moving e-1 to the other deal, a deal closed, and an override.
        email("e-1", "ana@seller.example", "cy@buyer.example", at="2026-11-02T10:30:00Z", revision=2),
        entity(
            entity_type="deal",
            id="deal-2",
            account_id="acc-1",
            owner_rep_id="rep-1",
            created_at="2026-10-05T00:00:00Z",
            stage="closed_won",
            amount=1200.5,
            closed_at="2026-11-05T00:00:00Z",
            updated_at="2026-11-05T00:00:00Z",
        ),
    ]
    published = [s.event for s in await deliver(engine, producer, *crm, *first)]
    published += [s.event for s in await deliver(engine, producer, *later)]
    published += [
        s.event for s in await deliver(engine, producer, override(first[2].activity_id, rep_id="rep-1"))
    ]
    events = [e for e in published if isinstance(e, ActivityAttributedV1)]
    await apply(engine, events[:3])
    await apply(engine, events[3:])
    return events


async def _rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table, order in TABLES.items():
            result = await conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
            out[table] = [_without_the_clock(dict(row._mapping)) for row in result]
    return out


def _without_the_clock(row: dict[str, Any]) -> dict[str, Any]:
    """A decision is stamped with the wall clock: kept as what it sets apart from it."""
    decided = row.pop("decided_at", None)
    if "parked_until" in row and row["parked_until"] is not None:
        row["parked_until"] -= decided
    return row


async def test_the_batches_write_the_same_rows_with_and_without_the_codecs(
    two_engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    with_codecs, without = two_engines
    events = [await _run(with_codecs), await _run(without)]
    assert [(e.activity_id, e.version) for e in events[0]] == [(e.activity_id, e.version) for e in events[1]]
    rows = [await _rows(with_codecs), await _rows(without)]
    for table in TABLES:
        assert rows[0][table] == rows[1][table], table
    counts = {table: len(found) for table, found in rows[0].items()}
    assert counts == {
        "activities": 4,
        "attributions": 4,
        "attribution_superseded": 3,
        "metric_contributions": 4,
        "metric_rollups": 18,
        "metric_deal_engagement_changes": 4,
    }
