"""``libs.common.db.array_codecs`` against asyncpg's own array encoding, on a real PostgreSQL."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from libs.common.db import array_codecs
from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings

CASES: dict[str, list[Any]] = {
    "bigint": [
        [],
        [None],
        [1, None, 3],
        [2**63 - 1, -(2**63)],
        list(range(-500, 500)),
        [*range(40), None],
        [[1, 2], [3, None]],
        [[[1], [2]], [[3], [4]]],
        [1.7, Decimal("-2.9"), True],
        [2**63],
        ["1"],
        [[1, 2], [3]],
    ],
    "integer": [[0, 2**31 - 1, -(2**31)], list(range(100)), [2**31], [None, 5]],
    "smallint": [[0, 2**15 - 1, -(2**15)], [2**15] * 40, [None]],
    "double precision": [
        [0.1, -0.0, 1e308, 5e-324, math.inf, -math.inf, None],
        [x / 3 for x in range(100)],
        [1, 2**53 + 1],
        [math.nan],
        ["0.5"],
    ],
    "boolean": [[True, False, None], [True] * 100, [1], []],
}


async def _send(conn: asyncpg.Connection, sql_type: str, values: Any) -> Any:
    try:
        return await conn.fetchval(f"SELECT array_send(CAST($1 AS {sql_type}[]))", values)
    except Exception as e:  # what was refused, by its kind
        return type(e)


@pytest.fixture
async def connections(database_url: str) -> Any:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    plain, coded = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    await array_codecs.register_array_codecs(coded)
    try:
        yield plain, coded
    finally:
        await plain.close()
        await coded.close()


async def test_postgresql_receives_the_arrays_asyncpg_sent(connections: Any) -> None:
    plain, coded = connections
    for sql_type, cases in CASES.items():
        for values in cases:
            sent = await _send(plain, sql_type, values)
            assert await _send(coded, sql_type, values) == sent, (sql_type, values)
    # What was refused is refused as asyncpg refuses it (its DataError around the encoder's error).
    assert await _send(coded, "bigint", [2**63]) is asyncpg.DataError
    assert await _send(coded, "boolean", [1]) is asyncpg.DataError
    assert isinstance(await _send(coded, "bigint", [1, None]), bytes)


async def test_arrays_read_back_as_asyncpg_reads_them(connections: Any) -> None:
    plain, coded = connections
    literals = [
        "'{}'::bigint[]",
        "'{1,NULL,-9223372036854775808}'::bigint[]",
        "'{{1,NULL},{3,4}}'::bigint[]",
        "'[0:1]={5,6}'::bigint[]",
        "'{7}'::integer[]",
        "'{-32768,NULL}'::smallint[]",
        "'{0.1,NaN,Infinity,NULL}'::float8[]",
        "'{t,f,NULL}'::boolean[]",
        "(SELECT array_agg(g) FROM generate_series(1, 1000) g)",
    ]
    for literal in literals:
        expected = await plain.fetchval(f"SELECT {literal}")
        got = await coded.fetchval(f"SELECT {literal}")
        assert repr(got) == repr(expected), literal


async def test_the_engine_installs_them_on_every_connection(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[str] = []

    def counting(name: str, encode: Any) -> Any:
        def wrapped(values: Any) -> bytes:
            encoded.append(name)
            return encode(values)  # type: ignore[no-any-return]

        return wrapped

    monkeypatch.setattr(
        array_codecs,
        "CODECS",
        tuple((e, counting(e.name, enc), dec) for e, enc, dec in array_codecs.CODECS),
    )
    engine = make_engine(DatabaseSettings(url=database_url, pool_size=1, max_overflow=1), "tests")
    try:
        async with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                total = await conn.execute(
                    text(
                        "SELECT sum(x) FROM unnest(CAST(:xs AS bigint[]), CAST(:ys AS float8[])) AS u(x, y)"
                    ),
                    {"xs": [1, 2, 3], "ys": [0.5, None, 1.5]},
                )
                assert total.scalar() == 6
    finally:
        await engine.dispose()
    assert encoded == ["_int8", "_float8", "_int8", "_float8"]
