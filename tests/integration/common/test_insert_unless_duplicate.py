"""``libs.common.db.statements.insert_unless_duplicate``: a plain insert under a savepoint that
reports a row already there instead of failing the transaction, and raises any other error."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.statements import insert_unless_duplicate, statement

INSERT = statement(
    "INSERT INTO scratch_keys (k, v) SELECT * FROM unnest(CAST(:k AS int[]), CAST(:v AS text[]))"
)


async def _rows(engine: AsyncEngine) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text("SELECT k, v FROM scratch_keys ORDER BY k"))]


async def test_new_rows_are_inserted_and_a_duplicate_leaves_nothing_of_its_statement(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(text("CREATE TABLE scratch_keys (k int PRIMARY KEY, v text NOT NULL)"))
    async with db_engine.begin() as conn:
        assert await insert_unless_duplicate(conn, INSERT, {"k": [1, 2], "v": ["a", "b"]})
        # 3 would be new, 2 is there: the statement is undone whole, the transaction goes on.
        assert not await insert_unless_duplicate(conn, INSERT, {"k": [3, 2], "v": ["c", "x"]})
        await conn.execute(text("INSERT INTO scratch_keys VALUES (4, 'd')"))
    assert await _rows(db_engine) == [(1, "a"), (2, "b"), (4, "d")]


async def test_any_other_error_is_raised(db_engine: AsyncEngine) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(text("CREATE TABLE scratch_keys (k int PRIMARY KEY, v text NOT NULL)"))
    with pytest.raises(IntegrityError) as raised:
        async with db_engine.begin() as conn:
            await insert_unless_duplicate(conn, INSERT, {"k": [1], "v": [None]})
    assert getattr(raised.value.orig, "sqlstate", None) == "23502"  # not null
    assert await _rows(db_engine) == []
