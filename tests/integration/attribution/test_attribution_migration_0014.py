"""Migration 0014: ``attributions_time`` dropped, the seen ledger's age index a BRIN, the engaged
deals' GIN without a pending list; and back."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade

_INDEXES = (
    "SELECT c.relname, am.amname, c.reloptions FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_am am ON am.oid = c.relam "
    "WHERE i.indrelid IN ('attributions'::regclass, 'ingest_seen_events'::regclass, "
    "'metric_contributions'::regclass) ORDER BY c.relname"
)


async def _indexes(engine: AsyncEngine) -> list[tuple[str, str, list[str] | None]]:
    async with engine.connect() as conn:
        return [(row.relname, row.amname, row.reloptions) for row in await conn.execute(text(_INDEXES))]


async def test_fewer_index_writes_per_event_and_back(database_url: str, db_engine: AsyncEngine) -> None:
    common = [
        ("attributions_account", "btree", None),
        ("attributions_deal", "btree", None),
        ("attributions_parked", "btree", None),
        ("attributions_pkey", "btree", None),
        ("attributions_rep", "btree", None),
    ]
    contributions = [
        ("metric_contributions_pkey", "btree", None),
        ("metric_contributions_time", "btree", None),
    ]
    after = [
        *common,
        ("ingest_seen_events_age", "brin", ["autosummarize=on"]),
        ("ingest_seen_events_pkey", "btree", None),
        ("metric_contributions_engaged", "gin", ["fastupdate=off"]),
        *contributions,
    ]
    assert await _indexes(db_engine) == after

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0013_attr_history_superseded")
    assert await _indexes(db_engine) == [
        *common,
        ("attributions_time", "btree", None),
        ("ingest_seen_events_age", "btree", None),
        ("ingest_seen_events_pkey", "btree", None),
        ("metric_contributions_engaged", "gin", None),
        *contributions,
    ]

    await asyncio.to_thread(upgrade, database_url)
    assert await _indexes(db_engine) == after
