"""Migration 0021: the spells a rep who came back was away (``ref_rep_absences``); and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade

_GAP = {
    "i": "bea@seller.example",
    "r": "rep-bea",
    "l": datetime(2026, 10, 10, 9, tzinfo=UTC),
    "b": datetime(2026, 11, 1, 9, tzinfo=UTC),
}


async def _tables(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE tablename = 'ref_rep_absences'")
        )
        return [row.tablename for row in rows]


async def test_absences_are_kept_per_identity_and_spell_and_dropped_on_downgrade(
    database_url: str, db_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0020_deal_owner_history")
    assert await _tables(db_engine) == []

    await asyncio.to_thread(upgrade, database_url)
    insert = text(
        "INSERT INTO ref_rep_absences (tenant_id, identity, rep_id, left_at, returned_at) "
        "VALUES (:t, :i, :r, :l, :b)"
    )
    async with db_engine.begin() as conn:
        # Leaving twice keeps both gaps; another tenant's rep is another row.
        await conn.execute(insert, {"t": "acme", **_GAP})
        later = {**_GAP, "l": datetime(2026, 11, 20, tzinfo=UTC), "b": datetime(2026, 12, 1, tzinfo=UTC)}
        await conn.execute(insert, {"t": "acme", **later})
        await conn.execute(insert, {"t": "globex", **_GAP})
    async with db_engine.connect() as conn:
        held = await conn.execute(
            text("SELECT tenant_id, left_at::date::text FROM ref_rep_absences ORDER BY 1, 2")
        )
        assert [tuple(r) for r in held] == [
            ("acme", "2026-10-10"),
            ("acme", "2026-11-20"),
            ("globex", "2026-10-10"),
        ]
    # A return not after the departure is no spell.
    with pytest.raises(DBAPIError):
        async with db_engine.begin() as conn:
            await conn.execute(insert, {"t": "acme", **_GAP, "l": _GAP["b"]})

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0020_deal_owner_history")
    assert await _tables(db_engine) == []
    await asyncio.to_thread(upgrade, database_url)
    assert await _tables(db_engine) == ["ref_rep_absences"]
