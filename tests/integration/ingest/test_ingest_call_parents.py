"""The parents of Twilio calls between two numbers, kept for their <Dial> legs (``CallParents``),
against PostgreSQL: the rendezvous with the legs' locked fold, shared statements, newest wins."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings
from services.ingest.adapters.repository import CallParents, lock_webhook_state, save_webhook_state

from .ingest_integration_support import TENANT, setup_tenant


def _parent(revision: int) -> str:
    return orjson.dumps({"call_sid": "CA-p", "revision": revision, "two_numbers": True}).decode()


async def _stored(engine: AsyncEngine, key: str) -> object:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT state FROM webhook_state WHERE tenant_id = :t AND source = 'twilio' AND object_key = :k"
                ),
                {"t": TENANT, "k": key},
            )
        ).one()
    return row.state


async def test_a_parent_is_kept_until_its_legs_are_and_waits_for_a_leg_folding_now(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Kept when new; a newer callback replaces it, an older one (or the same one of two in one
    statement) does not; once a leg is stored, the parent is left to the locked fold and the
    answer says so; a parent arriving while a leg folds under the row lock waits for it and
    finds it."""
    await setup_tenant(db_engine)
    engine = make_engine(database_settings, "tests")
    parents = CallParents(engine)
    try:
        first = await parents.keep(TENANT, "twilio", "CA-p", _parent(3), 3)
        concurrent = await asyncio.gather(
            parents.keep(TENANT, "twilio", "CA-p", _parent(2), 2),
            parents.keep(TENANT, "twilio", "CA-p", _parent(4), 4),
            parents.keep(TENANT, "twilio", "CA-q", _parent(1), 1),
        )
        newest = await _stored(db_engine, "CA-p")
        async with db_engine.begin() as conn:  # a leg of CA-q folding: the row is locked
            stored = await lock_webhook_state(conn, TENANT, "twilio", "CA-q")
            waiting = asyncio.create_task(parents.keep(TENANT, "twilio", "CA-q", _parent(5), 5))
            await asyncio.sleep(0.3)
            blocked = not waiting.done()
            await save_webhook_state(
                conn,
                TENANT,
                "twilio",
                "CA-q",
                orjson.dumps({**(stored or {}), "legs": {"CA-l": {}}}).decode(),
            )
        after_leg = await waiting
        left_to_fold = await _stored(db_engine, "CA-q")
    finally:
        await parents.close()
        await engine.dispose()
    assert (first, list(concurrent)) == (False, [False, False, False])
    assert newest == {"parent": {"call_sid": "CA-p", "revision": 4, "two_numbers": True}}
    assert (blocked, after_leg) == (True, True)
    # The parent's revision 5 is not written: the locked fold, which emits the call, keeps it.
    assert left_to_fold == {
        "parent": {"call_sid": "CA-p", "revision": 1, "two_numbers": True},
        "legs": {"CA-l": {}},
    }


async def test_every_waiting_parent_gets_the_database_error_and_the_next_flush_starts_afresh(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The database down: each caller waiting on the shared statement gets the error (the route
    answers 503 and Twilio retries); the next call reconnects. A value the database refuses (a
    parent that is not JSON) fails its own caller only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = make_engine(
        DatabaseSettings(url=f"postgresql+asyncpg://spm:spm@127.0.0.1:{closed_port}/spm"), "tests"
    )
    parents = CallParents(down)
    try:
        answers = await asyncio.gather(
            parents.keep(TENANT, "twilio", "CA-a", _parent(1), 1),
            parents.keep(TENANT, "twilio", "CA-b", _parent(1), 1),
            return_exceptions=True,
        )
        with pytest.raises(ConnectionRefusedError):
            await parents.keep(TENANT, "twilio", "CA-a", _parent(1), 1)
    finally:
        await parents.close()
        await down.dispose()
    assert [type(a).__name__ for a in answers] == ["ConnectionRefusedError", "ConnectionRefusedError"]

    await setup_tenant(db_engine)
    engine = make_engine(database_settings, "tests")
    parents = CallParents(engine)
    try:
        mixed = await asyncio.gather(
            parents.keep(TENANT, "twilio", "CA-a", "not json", 1),
            parents.keep(TENANT, "twilio", "CA-b", _parent(1), 1),
            return_exceptions=True,
        )
    finally:
        await parents.close()
        await engine.dispose()
    assert (type(mixed[0]).__name__, mixed[1]) == ("DBAPIError", False)
