"""Migration 0014: ``attributions_time`` dropped, the seen ledger's age index a BRIN; and back."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade

_INDEXES = (
    "SELECT c.relname, am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_am am ON am.oid = c.relam "
    "WHERE i.indrelid IN ('attributions'::regclass, 'ingest_seen_events'::regclass) ORDER BY c.relname"
)


async def _indexes(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        return [(row.relname, row.amname) for row in await conn.execute(text(_INDEXES))]


async def test_attributions_time_goes_and_the_ledger_age_index_is_brin(
    database_url: str, db_engine: AsyncEngine
) -> None:
    after = [
        ("attributions_account", "btree"),
        ("attributions_deal", "btree"),
        ("attributions_parked", "btree"),
        ("attributions_pkey", "btree"),
        ("attributions_rep", "btree"),
        ("ingest_seen_events_age", "brin"),
        ("ingest_seen_events_pkey", "btree"),
    ]
    assert await _indexes(db_engine) == after

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0013_attr_history_superseded")
    assert await _indexes(db_engine) == [
        ("attributions_account", "btree"),
        ("attributions_deal", "btree"),
        ("attributions_parked", "btree"),
        ("attributions_pkey", "btree"),
        ("attributions_rep", "btree"),
        ("attributions_time", "btree"),
        ("ingest_seen_events_age", "btree"),
        ("ingest_seen_events_pkey", "btree"),
    ]

    await asyncio.to_thread(upgrade, database_url)
    assert await _indexes(db_engine) == after
