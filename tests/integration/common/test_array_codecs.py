"""``libs.common.db.array_codecs`` against asyncpg's own array encoding, on a real PostgreSQL."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID
from pydantic_core import TzInfo
from sqlalchemy import text

from libs.common.db import array_codecs
from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings

_AT = datetime(2026, 12, 4, 17, 30, 15, 123456, tzinfo=UTC)
_ID, _ID2 = uuid.UUID("8f0e6a2c-5b1d-4c3e-9a7f-0123456789ab"), uuid.UUID(int=2**127 + 12345)
_PG_ID = PgUUID(uuid.UUID(int=99).bytes)


class _SubUUID(uuid.UUID):
    pass


class _Kind(StrEnum):
    CALL = "call"


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
    "timestamp with time zone": [
        [],
        [None],
        [_AT, None, _AT + timedelta(microseconds=1)],
        [_AT + timedelta(seconds=i, microseconds=i) for i in range(100)],  # the array module's path
        [
            _AT.astimezone(timezone(timedelta(hours=5, minutes=30))),
            _AT.replace(tzinfo=ZoneInfo("Europe/Paris")),
        ],
        [TzInfo(0).fromutc(_AT.replace(tzinfo=TzInfo(0))), _AT.replace(tzinfo=TzInfo(-3600))],  # pydantic's
        [_AT.replace(tzinfo=None), date(2026, 12, 4)],  # local time, as asyncpg reads them
        [datetime.max, datetime.min, None],  # asyncpg's infinities
        [datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)],  # the same instants in UTC
        [datetime(1, 1, 1, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
        [[_AT, None], [_AT, _AT]],
        (_AT, _AT),
        [[_AT], _AT],
        [(_AT,)],
        ["2026-12-04T12:00:00Z"],
        [1_700_000_000],
        [_AT] * 40 + ["x"],
    ],
    "date": [
        [],
        [None],
        [date(2026, 12, 4), None, date(2000, 1, 1), date(1999, 12, 31)],
        [date(2026, 1, 1) + timedelta(days=i) for i in range(100)],  # the array module's path
        [date.max, date.min, None],  # asyncpg's infinities
        [date(1, 1, 2), date(9999, 12, 30)],
        [_AT, _AT.replace(tzinfo=None)],  # datetimes: their day, as asyncpg takes them
        [[date(2026, 1, 1), None], [date.max, date(2026, 1, 2)]],
        (date(2026, 1, 1), date(2026, 1, 2)),
        [[date(2026, 1, 1)], date(2026, 1, 2)],
        [(date(2026, 1, 1),)],
        ["2026-12-04"],
        [20261204],
        [date(2026, 1, 1)] * 40 + ["x"],
        "2026-12-04",
        5,
    ],
    "character varying": [
        [],
        [None],
        ["a", None, ""],
        [f"row-{i}" for i in range(1000)],
        ["x" * 5000, "é" * 3000, "y", None],  # lengths past the packed table
        ["x" * 5000, "y"],
        ["été", "日本語", "𝄞 astral", 'quote" and \\ backslash', "{braces},commas", "NULL", " spaced "],
        [_Kind.CALL],  # a str subclass, as asyncpg takes it
        ["bench"] * 100,  # repeated values: each encoded once
        ["a", None, "a", None, "b", "a"],
        [None, None, "é", "é"],
        ["x" * 5000] * 3,
        [f"rep-{i % 7}" for i in range(1000)],
        [_Kind.CALL, "call"] * 3,
        [["a", "b"], ["c", None]],
        ("a", "b"),
        [["a"], "b"],
        [("a",)],
        [b"bytes"],
        ["a", 1],
        [None, 2],
        ["\ud800"],  # a lone surrogate: no UTF-8 for it
        "abc",
        5,
    ],
    "uuid": [
        [],
        [None],
        [_ID, None, _ID2],
        [uuid.UUID(int=i * 7919) for i in range(1000)],
        [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)],
        [_PG_ID, _ID],  # asyncpg's own UUID (what it reads back), with the standard library's
        [_PG_ID] * 3,
        [str(_ID), _ID.hex, "{" + str(_ID2) + "}", _ID2.urn],  # strings, as asyncpg parses them
        ["not-a-uuid"],
        [_SubUUID(int=5)],  # a subclass: by its bytes
        [[_ID, None], [_ID2, _ID]],
        (_ID, _ID2),
        [[_ID], _ID],
        [(_ID,)],
        [_ID.bytes],
        [1],
        [_ID, 1],
        str(_ID),
        5,
    ],
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
        "'{2026-12-04 17:30:15.123456+00,NULL,infinity,-infinity,2000-01-01 00:00:00+00}'::timestamptz[]",
        "'{{2026-12-04 17:30:15+05:30,NULL},{0001-01-01 00:00:00+00,9999-12-31 23:59:59.999999+00}}'::timestamptz[]",
        '\'{a,NULL,"","b c","{x}"}\'::varchar[]',
        "'{{a,b},{c,NULL}}'::varchar[]",
        "(SELECT array_agg(g::text::varchar) FROM generate_series(1, 1000) g)",
        "(SELECT array_agg(timestamptz '2026-12-04 00:00:00+00' + g * interval '1.000001 s') FROM generate_series(1, 100) g)",
        "'{2026-12-04,NULL,infinity,-infinity,2000-01-01,1999-12-31}'::date[]",
        "'{{0001-01-01,NULL},{9999-12-31,2026-02-28}}'::date[]",
        "(SELECT array_agg(date '2026-01-01' + g) FROM generate_series(1, 1000) g)",
        "'{}'::uuid[]",
        "'{8f0e6a2c-5b1d-4c3e-9a7f-0123456789ab,NULL,00000000-0000-0000-0000-000000000000}'::uuid[]",
        "'{{8f0e6a2c-5b1d-4c3e-9a7f-0123456789ab,NULL},{ffffffff-ffff-ffff-ffff-ffffffffffff,NULL}}'::uuid[]",
        "(SELECT array_agg(md5(g::text)::uuid) FROM generate_series(1, 1000) g)",
    ]
    for literal in literals:
        expected = await plain.fetchval(f"SELECT {literal}")
        got = await coded.fetchval(f"SELECT {literal}")
        assert repr(got) == repr(expected), literal
    # asyncpg's own UUID, not only one that prints the same.
    ids = await coded.fetchval("SELECT '{8f0e6a2c-5b1d-4c3e-9a7f-0123456789ab}'::uuid[]")
    assert type(ids[0]) is PgUUID
    assert ids == [_ID]


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


async def test_texts_already_in_utf8_reach_postgresql_as_the_strings_would(connections: Any) -> None:
    # ``Utf8Texts``: JSON as orjson or msgspec wrote it, sent without a ``str`` of each in between.
    plain, coded = connections
    cases: list[list[str | None]] = [
        [],
        [None],
        ['{"a": 1}', None, ""],
        ["x" * 5000, "é" * 3000, "y", None],
        ["été", "日本語", "𝄞 astral", 'quote" and \\ backslash', "{braces},commas", "NULL"],
        [f'{{"row": {i}}}' for i in range(1000)],
    ]
    for texts in cases:
        encoded = array_codecs.Utf8Texts([None if t is None else t.encode() for t in texts])
        assert await _send(coded, "character varying", encoded) == await _send(
            plain, "character varying", texts
        )
    # PostgreSQL checks the bytes are UTF-8; the codec takes only bytes and None in them.
    assert await _send(coded, "character varying", array_codecs.Utf8Texts([b"\xff"])) is (
        asyncpg.CharacterNotInRepertoireError
    )
    assert (
        await _send(coded, "character varying", array_codecs.Utf8Texts(cast(Any, ["a"]))) is asyncpg.DataError
    )
