"""Migration 0052: ``metric_deferred_events``, the versions a batch set aside while their tenant's
rollups were busy, read back as they were, in order, each once; and back, only once empty (a
version set aside is never lost: its offset is committed)."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.attribution_fast import Attributed, decode_encoded, encode_attributed
from libs.common.contracts.envelope import encode_body
from libs.common.db.migrate import alembic_config, upgrade
from services.metrics.adapters import deferred

from .metrics_support import attributed

BEFORE = "0051_deal_names_seen"
TABLE = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'metric_deferred_events'"


async def _scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


async def test_the_versions_set_aside_and_back(database_url: str, db_engine: AsyncEngine) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _scalar(db_engine, TABLE) == 0
    await asyncio.to_thread(upgrade, database_url)

    # As the consumer decodes them: the contract's model, or the fast path's struct.
    moved = attributed(activity=1, version=2, rep_id="rep-2")
    fast = decode_encoded(encode_body(attributed(activity=2)))
    first = attributed(activity=1)
    async with db_engine.begin() as conn:
        assert await deferred.defer(conn, [moved, fast]) == 2
        # Delivered again, with one not yet set aside: only that one is written.
        assert await deferred.defer(conn, [fast, first, moved]) == 1
        assert await deferred.backlogged(conn, ["acme", "other"]) == {"acme"}
    async with db_engine.begin() as conn:
        taken = await deferred.take(conn, "acme", 2)
    # Read back as the topic carried them (their bodies), oldest first.
    bodies = [encode_attributed(e) if isinstance(e, Attributed) else encode_body(e) for e in taken]
    assert bodies == [encode_body(moved), encode_attributed(fast)]

    # One version still set aside: the downgrade refuses, saying how many and what to do.
    with pytest.raises(RuntimeError, match=r"holds 1 version\(s\) not yet counted.*Let the metrics drainer"):
        await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    async with db_engine.begin() as conn:
        assert [(e.activity_id.int, e.version) for e in await deferred.take(conn, "acme", 10)] == [(1, 1)]
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await _scalar(db_engine, TABLE) == 0
    await asyncio.to_thread(upgrade, database_url)
    assert await _scalar(db_engine, TABLE) == 1
