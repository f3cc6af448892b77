"""Migration 0038: ``ingest_time_blocks``, the revision at which each object was read as no
meeting; recorded and read back through ingest's repository, and dropped on the way down."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from services.ingest.adapters.repository import record_time_blocks, time_block_revisions
from tests.integration.attribution.attribution_support import rows

BEFORE = "0037_held_sweep_outbox"
TABLE = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ingest_time_blocks'"


async def test_time_blocks_and_back(database_url: str, db_engine: AsyncEngine) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, TABLE) == [(0,)]
    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, TABLE) == [(1,)]

    one, two = uuid.UUID(int=1), uuid.UUID(int=2)
    await record_time_blocks(db_engine, "t-0038", {one: 5, two: 2})
    # An older hold read later keeps the higher revision; a newer one raises it.
    await record_time_blocks(db_engine, "t-0038", {one: 3, two: 7})
    assert await time_block_revisions(db_engine, "t-0038", [one, two, uuid.UUID(int=3)]) == {one: 5, two: 7}
    # Another tenant's object of the same id is not this one's.
    assert await time_block_revisions(db_engine, "t-other", [one]) == {}

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, TABLE) == [(0,)]
    await asyncio.to_thread(upgrade, database_url)
    assert await time_block_revisions(db_engine, "t-0038", [one, two]) == {}
