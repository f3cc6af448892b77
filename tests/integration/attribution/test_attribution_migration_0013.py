"""Migration 0013: history keeps superseded versions only; the view shows every version as before."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

_A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
_B = uuid.UUID("00000000-0000-0000-0000-00000000000b")
_VERSION = (
    "INSERT INTO {table} (tenant_id, activity_id, version, status, deal_id, confidence, explanation, "
    "decided_at{extra}) VALUES ('acme', :a, :v, 'attributed', :d, 0.9, '{{}}'::jsonb, now(){values})"
)
_HISTORY = "SELECT activity_id, version, deal_id FROM attribution_history ORDER BY activity_id, version"


async def test_history_moves_to_superseded_versions_and_back(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0012b_metrics_writes")
    async with db_engine.begin() as conn:
        # A: decided twice (v2 current); B: decided once. History held every version.
        for a, v, deal in ((_A, 1, "deal-1"), (_A, 2, "deal-2"), (_B, 1, "deal-3")):
            await conn.execute(
                text(_VERSION.format(table="attribution_history", extra="", values="")),
                {"a": a, "v": v, "d": deal},
            )
        for a, v, deal in ((_A, 2, "deal-2"), (_B, 1, "deal-3")):
            await conn.execute(
                text(
                    _VERSION.format(
                        table="attributions", extra=", occurred_at, kind", values=", now(), 'call'"
                    )
                ),
                {"a": a, "v": v, "d": deal},
            )
    every = [(_A, 1, "deal-1"), (_A, 2, "deal-2"), (_B, 1, "deal-3")]
    assert await rows(db_engine, _HISTORY) == every

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, _HISTORY) == every
    superseded = (
        "SELECT activity_id, version, deal_id FROM attribution_superseded ORDER BY activity_id, version"
    )
    assert await rows(db_engine, superseded) == [(_A, 1, "deal-1")]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0012b_metrics_writes")
    assert await rows(db_engine, _HISTORY) == every
    async with db_engine.connect() as conn:
        kind = (
            await conn.execute(
                text(
                    "SELECT table_type FROM information_schema.tables WHERE table_name = 'attribution_history'"
                )
            )
        ).scalar_one()
    assert kind == "BASE TABLE"
    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, _HISTORY) == every
