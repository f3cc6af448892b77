"""Migration 0054: ``activity_identities`` as a PL/pgSQL loop, the same keys as 0053's SQL body for
every payload, so that ``activities_participants`` built with either finds the same rows; and back."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import alembic_config, upgrade
from tests.integration.attribution.attribution_support import rows

BEFORE = "0053_activities_by_participant"
LANGUAGE = "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = 'activity_identities'"
#: Participants as sources send them: duplicates, a number beside an address, a name alone, a
#: non-object element, a JSON null, a number where an address goes; and payloads without an array.
PAYLOADS = [
    '{"participants": [{"email": "ana@seller.example", "role": "organizer"}, {"phone": "+14155550100", '
    '"email": "bo@buyer.example"}, {"email": "ana@seller.example"}, "x", {"name": "Cy"}]}',
    '{"participants": [{"email": null, "phone": "+14155550100"}, {"email": 5}, null, 1]}',
    '{"participants": []}',
    '{"participants": {"email": "ana@seller.example"}}',
    "{}",
    # A large meeting (past 32 participants: one sort, not the loop), a duplicate among them.
    '{"participants": ['
    + ", ".join(f'{{"email": "p{i}@buyer.example"}}' for i in range(40))
    + ', {"email": "p0@buyer.example", "phone": "+14155550199"}]}',
]
KEYS = (
    "SELECT CAST(external_id AS int) AS n, activity_identities(tenant_id, payload -> 'participants') "
    "FROM activities WHERE tenant_id = 'acme' ORDER BY n"
)
#: Through ``activities_participants`` alone (as ``repository.windowed_activities`` asks).
FOUND = (
    "SELECT CAST(external_id AS int) AS n FROM activities "
    "WHERE activity_identities(tenant_id, payload -> 'participants') && ARRAY[CAST(:key AS text)] ORDER BY n"
)


async def _insert(engine: AsyncEngine, first: int) -> None:
    async with engine.begin() as conn:
        for n, payload in enumerate(PAYLOADS, start=first):
            await conn.execute(
                text(
                    "INSERT INTO activities (tenant_id, activity_id, source, external_id, kind, direction, outcome, "
                    "occurred_at, payload, ingested_at) VALUES ('acme', md5(CAST(:n AS text))::uuid, 'email', "
                    "CAST(:n AS text), 'email', 'outbound', 'sent', now(), CAST(:p AS jsonb), now())"
                ),
                {"n": str(n), "p": payload},
            )


async def _found(engine: AsyncEngine, key: str) -> list[int]:
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in await conn.execute(text("EXPLAIN " + FOUND), {"key": key}))
        assert "activities_participants" in plan, plan
        found = [int(r[0]) for r in await conn.execute(text(FOUND), {"key": key})]
        await conn.rollback()
    return found


async def _keys(engine: AsyncEngine) -> list[tuple[int, list[str]]]:
    return [(int(n), sorted(keys)) for n, keys in await rows(engine, KEYS)]


async def test_the_loop_gives_the_sql_bodys_keys_and_the_index_finds_the_same_rows_both_ways(
    database_url: str, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(text("INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'acme')"))
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, LANGUAGE) == [("sql",)]
    await _insert(db_engine, 1)  # indexed by 0053's body
    before = await _keys(db_engine)
    assert before == [
        (1, ["acme +14155550100", "acme ana@seller.example", "acme bo@buyer.example"]),
        (2, ["acme +14155550100", "acme 5"]),
        (3, []),
        (4, []),
        (5, []),
        (6, sorted([*(f"acme p{i}@buyer.example" for i in range(40)), "acme +14155550199"])),
    ]

    await asyncio.to_thread(upgrade, database_url)
    assert await rows(db_engine, LANGUAGE) == [("plpgsql",)]
    await _insert(db_engine, 11)  # indexed by the loop
    # Each key once, in the participants' order; the same set as before.
    assert (await rows(db_engine, KEYS))[0] == (
        1,
        ["acme ana@seller.example", "acme bo@buyer.example", "acme +14155550100"],
    )
    assert await _keys(db_engine) == before + [(n + 10, keys) for n, keys in before]
    assert await _found(db_engine, "acme +14155550100") == [1, 2, 11, 12]
    assert await _found(db_engine, "acme ana@seller.example") == [1, 11]
    assert await _found(db_engine, "acme 5") == [2, 12]
    assert await _found(db_engine, "acme Cy") == []
    assert await _found(db_engine, "acme p0@buyer.example") == [6, 16]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), BEFORE)
    assert await rows(db_engine, LANGUAGE) == [("sql",)]
    assert await _keys(db_engine) == before + [(n + 10, keys) for n, keys in before]
    assert await _found(db_engine, "acme bo@buyer.example") == [1, 11]
    await asyncio.to_thread(upgrade, database_url)
