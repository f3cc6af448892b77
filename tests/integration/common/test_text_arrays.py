"""``libs.common.db.arrays.text_array_literal``: ragged text arrays through ``unnest`` and back."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.arrays import text_array_literal

AWKWARD: list[list[str]] = [
    [],
    ["deal-1"],
    ["a,b", "{c}", 'say "hi"', "back\\slash", "NULL", "null", " padded ", "", "é ü 北京"],
    ["x"] * 3,
    ['\\"', "}{", "\\\\"],
]


def test_literals() -> None:
    assert text_array_literal([]) == "{}"
    assert text_array_literal(()) == "{}"
    assert text_array_literal(["a", "b"]) == '{"a","b"}'
    assert text_array_literal(['q"', "b\\"]) == '{"q\\"","b\\\\"}'
    assert text_array_literal([""]) == '{""}'
    # Any iterable; an element with a quote or a backslash escapes every element's.
    assert text_array_literal(v for v in ["a", "b"]) == '{"a","b"}'
    assert text_array_literal(("a", 'q"', "b")) == '{"a","q\\"","b"}'


async def test_ragged_arrays_come_back_unchanged(db_engine: AsyncEngine) -> None:
    async with db_engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT u.i, CAST(u.a AS text[]) AS a FROM unnest(CAST(:i AS int[]), CAST(:a AS text[])) "
                "AS u(i, a) ORDER BY u.i"
            ),
            {"i": list(range(len(AWKWARD))), "a": [text_array_literal(v) for v in AWKWARD]},
        )
        assert [list(row.a) for row in result] == AWKWARD
