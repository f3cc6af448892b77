"""``libs.common.db.array_codecs``: PostgreSQL's binary array format, exact bytes and round trips."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from libs.common.db.array_codecs import CODECS

CODEC = {element.name: (encode, decode) for element, encode, decode in CODECS}
INT8 = CODEC["_int8"]


def _reference(element_oid: int, code: str, size: int, values: list[Any]) -> bytes:
    """The array as ``array_send`` writes it, one dimension, lower bound 1, NULLs as length -1."""
    head = struct.pack(">iiIii", 1, 0, element_oid, len(values), 1)
    return head + b"".join(
        struct.pack(">i", -1) if v is None else struct.pack(f">i{code}", size, v) for v in values
    )


def test_exact_bytes_small_and_through_the_array_module() -> None:
    encode, _ = INT8
    assert encode([1, -2]) == (
        b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x14\x00\x00\x00\x02\x00\x00\x00\x01"
        b"\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01"
        b"\x00\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xfe"
    )
    # 31, 32 and 33 elements: both sides of the switch to the array module give the same bytes.
    for n in (31, 32, 33, 1000):
        values = [(i * 7919 - 3_000_000_000) * (-1) ** i for i in range(n)]
        assert encode(values) == _reference(20, "q", 8, values)
        assert CODEC["_int4"][0]([v % 2**31 for v in values]) == _reference(
            23, "i", 4, [v % 2**31 for v in values]
        )
        assert CODEC["_int2"][0]([v % 2**15 for v in values]) == _reference(
            21, "h", 2, [v % 2**15 for v in values]
        )
        floats = [v / 7 for v in values]
        assert CODEC["_float8"][0](floats) == _reference(701, "d", 8, floats)
        bools = [v > 0 for v in values]
        assert CODEC["_bool"][0](bools) == _reference(16, "?", 1, bools)


def test_extremes_through_the_array_module_are_the_big_endian_bytes() -> None:
    # Packed in the machine's order, then swapped: every bit as ``>q``, ``>i`` and ``>d`` write it.
    ints = [2**63 - 1, -(2**63), 0, 1, -1, 2**31, True, False] * 6
    assert INT8[0](ints) == _reference(20, "q", 8, ints)
    int4 = [2**31 - 1, -(2**31), 0, 1, -1, 65_536] * 8
    assert CODEC["_int4"][0](int4) == _reference(23, "i", 4, int4)
    floats = [0.1, -0.0, 1e308, 5e-324, math.inf, -math.inf, math.nan, 2.0**53 + 1, 3, True] * 5
    assert CODEC["_float8"][0](floats) == _reference(701, "d", 8, floats)
    with pytest.raises(OverflowError):
        INT8[0]([2**63] * 40)


def test_nulls_empty_and_extremes_round_trip() -> None:
    encode, decode = INT8
    cases: list[list[Any]] = [
        [],
        [None],
        [1, None, 3],
        [2**63 - 1, -(2**63), 0],
        [None] * 40,
        [*range(40), None],
    ]
    for values in cases:
        assert decode(encode(values)) == values
    assert encode([]) == struct.pack(">iiIii", 1, 0, 20, 0, 1)
    assert encode([1, None, 3]) == _reference(20, "q", 8, [1, None, 3])
    assert CODEC["_bool"][1](CODEC["_bool"][0]([True, None, False])) == [True, None, False]


def test_floats_keep_every_bit() -> None:
    encode, decode = CODEC["_float8"]
    values = [0.1, -0.0, 1e308, 5e-324, math.inf, -math.inf, 2.0**53 + 1, None]
    back = decode(encode(values))
    assert [struct.pack(">d", v) for v in back[:-1]] == [struct.pack(">d", v) for v in values[:-1]]
    assert back[-1] is None
    (nan,) = decode(encode([math.nan]))
    assert math.isnan(nan)
    many = [math.nan, *range(40)]
    assert math.isnan(decode(encode(many))[0])
    assert decode(encode(many))[1:] == list(range(40))
    assert decode(encode([1, 2])) == [1.0, 2.0]  # integers into double precision, as asyncpg


def test_two_dimensions_and_tuples() -> None:
    encode, decode = INT8
    nested = [[1, 2], [3, None]]
    assert encode(nested) == (
        struct.pack(">iiIiiii", 2, 0, 20, 2, 1, 2, 1)
        + b"".join(struct.pack(">i", -1) if v is None else struct.pack(">iq", 8, v) for v in (1, 2, 3, None))
    )
    assert decode(encode(nested)) == nested
    assert decode(encode((4, 5))) == [4, 5]
    with pytest.raises(ValueError, match="non-homogeneous"):
        encode([[1, 2], [3]])
    with pytest.raises(ValueError, match="non-homogeneous"):
        encode([[1], 2])


def test_conversions_as_asyncpg_makes_them() -> None:
    encode, decode = INT8
    # An object with __int__ is converted (a float truncated), as asyncpg's integer encoders do.
    assert decode(encode([1.7, Decimal("-2.9"), True])) == [1, -2, 1]
    assert decode(encode([1.7] * 40)) == [1] * 40
    assert CODEC["_float8"][1](CODEC["_float8"][0]([Decimal("0.5")])) == [0.5]


@pytest.mark.parametrize(
    ("name", "values", "error"),
    [
        ("_int8", [2**63], OverflowError),
        ("_int8", [2**63] * 40, OverflowError),
        ("_int8", [-(2**63) - 1, None], OverflowError),
        ("_int4", [2**31], OverflowError),
        ("_int4", [2**31] * 40, OverflowError),
        ("_int2", [2**15], OverflowError),
        ("_int8", ["1"], TypeError),
        ("_int8", [b"1"] * 40, TypeError),
        ("_float8", ["1.0"], TypeError),
        ("_float8", [10**400], OverflowError),
        ("_bool", [1], TypeError),
        ("_bool", [0, None], TypeError),
        ("_int8", "123", TypeError),
        ("_int8", 5, TypeError),
        ("_int8", {"a": 1}, TypeError),
    ],
)
def test_refused(name: str, values: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        CODEC[name][0](values)


TIMESTAMPTZ = CODEC["_timestamptz"]
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def test_instants_are_microseconds_since_2000_as_asyncpg_writes_them() -> None:
    encode, decode = TIMESTAMPTZ
    at = datetime(2026, 12, 4, 17, 30, 15, 123456, tzinfo=UTC)
    micros = (at - _EPOCH) // timedelta(microseconds=1)
    assert encode([_EPOCH + timedelta(microseconds=1), None, at]) == (
        struct.pack(">iiIii", 1, 0, 1184, 3, 1)
        + struct.pack(">iq", 8, 1)
        + struct.pack(">i", -1)
        + struct.pack(">iq", 8, micros)
    )
    # Both sides of the switch to the array module, and another offset for the same instants.
    for n in (31, 32, 1000):
        instants = [at + timedelta(seconds=7 * i, microseconds=i) for i in range(n)]
        expected = _reference(1184, "q", 8, [(t - _EPOCH) // timedelta(microseconds=1) for t in instants])
        assert encode(instants) == expected
        assert encode([t.astimezone(timezone(timedelta(hours=-5))) for t in instants]) == expected
        assert decode(expected) == instants
    assert decode(encode([[at, None], [_EPOCH, at]])) == [[at, None], [_EPOCH, at]]


def test_asyncpgs_infinities_both_ways() -> None:
    encode, decode = TIMESTAMPTZ
    top, bottom = struct.pack(">iq", 8, 2**63 - 1), struct.pack(">iq", 8, -(2**63))
    head = struct.pack(">iiIii", 1, 0, 1184, 4, 1)
    # Its naive infinities, and the same instants given in UTC, are PostgreSQL's infinities.
    given = [datetime.max, datetime.min, datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)]
    assert encode(given) == head + top + bottom + top + bottom
    assert decode(encode(given)) == [datetime.max, datetime.min, datetime.max, datetime.min]


@pytest.mark.parametrize("values", [["2026-12-04T12:00:00Z"], [1_700_000_000], [(datetime.now(UTC),)]])
def test_anything_but_a_date_is_refused_as_asyncpg_refuses_it(values: list[Any]) -> None:
    with pytest.raises(TypeError, match=r"expected a datetime\.date or datetime\.datetime instance"):
        TIMESTAMPTZ[0](values)


def test_one_instant_throughout_is_written_as_each_of_its_elements() -> None:
    # A batch's ``now`` on every version is converted once: the same bytes as one by one.
    encode, decode = TIMESTAMPTZ
    at = datetime(2026, 12, 5, 12, 0, 1, 7, tzinfo=UTC)
    elsewhere = at.astimezone(timezone(timedelta(hours=2)))
    for values in (
        [at] * 40,
        [at],
        [at, elsewhere, at],
        [at, None, at],
        [at, at + timedelta(microseconds=1), at],
    ):
        micros = [None if v is None else (v - _EPOCH) // timedelta(microseconds=1) for v in values]
        assert encode(values) == _reference(1184, "q", 8, micros)
        assert decode(encode(values)) == values
    top = datetime.max.replace(tzinfo=UTC)
    assert encode([top] * 3) == struct.pack(">iiIii", 1, 0, 1184, 3, 1) + struct.pack(">iq", 8, 2**63 - 1) * 3
